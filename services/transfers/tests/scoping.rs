//! Least privilege per subject. Policy, "Data Security & Protection": "Restricted access"
//! to personal data, and service providers get "only the information they need". A
//! company client may ask for transfers of, and see the recipients of, only the subjects
//! it is linked with in identity (it created the account, the subject signed in through
//! it, or it presented the subject's session to LinkSubject). For any other subject the
//! answer is the one for a subject that does not exist, and nothing is logged.

mod support;

use pdm_proto::{
    identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient},
    transfers::v1::{self as pb, Regime, transfers_service_client::TransfersServiceClient},
};
use pdm_runtime::ManualClock;
use pdm_testkit::{Mesh, assert::rows, fake::Person, start_time};
use pdm_tls::identity::Caller;
use support::{Client, authorize, mesh, recipient, register, subject, transfer};
use tonic::Code;

fn transfers_as(mesh: &Mesh, client: &str) -> anyhow::Result<Client> {
    Ok(TransfersServiceClient::new(mesh.channel_as(
        pdm_transfers::NAME,
        &Caller::Client(client.to_owned()),
    )?))
}

async fn logged(mesh: &Mesh) -> anyhow::Result<u64> {
    Ok(rows(&mesh.connect_db(pdm_transfers::NAME).await?, "transfer_log").await)
}

/// What the subject methods answer about `subject`, with the subject id blanked out.
async fn answers(client: &mut Client, recipient_id: &str, subject: &str) -> Vec<String> {
    fn show<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> String {
        match r {
            Ok(response) => format!("{:?}", response.into_inner()),
            Err(status) => format!("{:?} {}", status.code(), status.message()),
        }
    }
    vec![
        show(
            client
                .authorize_transfer(pb::AuthorizeTransferRequest {
                    subject_id: subject.to_owned(),
                    ..transfer(Regime::Eu, recipient_id)
                })
                .await,
        ),
        show(
            client
                .list_recipients(pb::ListRecipientsRequest {
                    subject_id: subject.to_owned(),
                    country: String::new(),
                })
                .await,
        ),
    ]
    .into_iter()
    .map(|a| a.replace(subject, "<subject>"))
    .collect()
}

#[tokio::test]
async fn restricted_access_another_client_cannot_tell_a_subject_from_one_that_does_not_exist()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut owner = mesh.transfers();
    let germany = register(&mut owner, recipient("backup-de", "DE")).await?;
    // The test kit's client created the subject and had its data sent to Germany.
    let ada = mesh.sign_up(&Person::new()).await?;
    authorize(
        &mut owner,
        pb::AuthorizeTransferRequest {
            subject_id: ada.clone(),
            ..transfer(Regime::Eu, &germany.recipient_id)
        },
    )
    .await?;
    let before = logged(&mesh).await?;

    let mut stranger = transfers_as(&mesh, "stranger")?;
    let for_nobody = answers(&mut stranger, &germany.recipient_id, &subject()).await;
    let for_ada = answers(&mut stranger, &germany.recipient_id, &ada).await;
    assert_eq!(for_ada, for_nobody);
    assert_eq!(
        for_ada[0],
        format!("{:?} subject not found", Code::NotFound)
    );
    assert_eq!(
        for_ada[1],
        format!("{:?}", pb::ListRecipientsResponse::default())
    );
    // Nothing was decided or logged for the stranger.
    assert_eq!(logged(&mesh).await?, before);

    // The owner still sees the subject's recipient.
    let recipients = owner
        .list_recipients(pb::ListRecipientsRequest {
            subject_id: ada.clone(),
            country: String::new(),
        })
        .await?
        .into_inner()
        .recipients;
    assert_eq!(recipients.len(), 1);
    Ok(())
}

#[tokio::test]
async fn restricted_access_a_client_the_subject_signed_in_through_gets_the_normal_answers()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let germany = register(&mut mesh.transfers(), recipient("backup-de", "DE")).await?;
    let person = Person::new();
    let ada = mesh.sign_up(&person).await?;
    IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &Caller::Client("shop".into()))?,
    )
    .authenticate(AuthenticateRequest {
        email: person.email.clone(),
        password: person.password.clone(),
    })
    .await?;
    let before = logged(&mesh).await?;

    let mut shop = transfers_as(&mesh, "shop")?;
    let d = authorize(
        &mut shop,
        pb::AuthorizeTransferRequest {
            subject_id: ada.clone(),
            ..transfer(Regime::Eu, &germany.recipient_id)
        },
    )
    .await?;
    assert!(d.allowed);
    assert_eq!(logged(&mesh).await?, before + 1);
    let recipients = shop
        .list_recipients(pb::ListRecipientsRequest {
            subject_id: ada.clone(),
            country: String::new(),
        })
        .await?
        .into_inner()
        .recipients;
    assert_eq!(recipients.len(), 1);
    Ok(())
}
