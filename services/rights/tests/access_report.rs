//! The access report: an access request's package says who accessed the subject's data
//! and when, from every service's access trail ("Data Security & Protection", "Performing
//! audit functions"; GDPR Art. 15).

mod support;

use pdm_proto::{
    identity::v1::GetAccountRequest,
    identity::v1::identity_service_client::IdentityServiceClient,
    rights::v1::{self as pb, Regime, RequestKind},
};
use pdm_tls::identity::Caller;
use support::{download, mesh, password, person_with_data, submit, wait_closed};

#[tokio::test]
async fn the_access_package_lists_who_accessed_the_data_and_when() -> anyhow::Result<()> {
    let outbox = tempfile::tempdir()?;
    let mesh = mesh(&outbox.path().join("messages.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    // A company service (support tooling) the subject signed in through reads the account.
    let mut tooling =
        IdentityServiceClient::new(mesh.channel_as("identity", &Caller::Client("support".into()))?);
    tooling
        .authenticate(pdm_proto::identity::v1::AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?;
    tooling
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;

    let submitted = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            credential: password(&person),
            ..Default::default()
        },
    )
    .await?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status, pb::Status::Completed as i32, "{done:?}");
    let package = download(&mesh, &submitted.request_id).await?;
    let accesses = package["summary"]["accesses"]
        .as_array()
        .expect("accesses in the summary");

    let read_by_support = accesses.iter().find(|a| {
        a["service"] == "identity"
            && a["caller"] == "client:support"
            && a["method"] == "/pdm.identity.v1.IdentityService/GetAccount"
    });
    let read = read_by_support.unwrap_or_else(|| panic!("no GetAccount by support: {accesses:?}"));
    assert!(read["at"].as_str().is_some_and(|t| !t.is_empty()), "{read}");
    assert_eq!(read["trace_id"].as_str().map(str::len), Some(32), "{read}");
    // The sign-up, the consent grant, and the rights service's own export for this
    // request (its purpose is the request id) are there too.
    assert!(
        accesses
            .iter()
            .any(|a| a["method"] == "/pdm.identity.v1.IdentityService/CreateAccount"),
        "{accesses:?}"
    );
    assert!(
        accesses.iter().any(|a| a["service"] == "consent"
            && a["method"] == "/pdm.consent.v1.ConsentService/GrantConsent"
            && a["purpose"] == "product_analytics"),
        "{accesses:?}"
    );
    assert!(
        accesses.iter().any(|a| a["caller"] == "rights"
            && a["method"] == "/pdm.subject.v1.SubjectDataService/ExportSubject"
            && a["purpose"] == submitted.request_id.as_str()),
        "{accesses:?}"
    );
    // Oldest first.
    let times: Vec<&str> = accesses.iter().filter_map(|a| a["at"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);
    assert!(
        package["human_readable"]
            .as_str()
            .is_some_and(|t| t.contains("7. Who accessed it and when")),
        "{}",
        package["human_readable"]
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
