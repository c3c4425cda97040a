//! Mutual TLS, caller authorisation and rate limits on real servers ("Data Security &
//! Protection": encryption in transit, access restricted to authorised parties).

use std::{path::Path, sync::Arc, time::Duration};

use pdm_dev_pki::{Authority, service_dns_names, write_identity};
use pdm_proto::{
    consent::v1::{
        CheckProcessingRequest, GetLedgerPositionRequest, ListPurposesRequest,
        consent_service_client::ConsentServiceClient,
    },
    identity::v1::{
        AuthenticateRequest, GetAccountRequest, identity_service_client::IdentityServiceClient,
    },
    subject::v1::{EraseSubjectRequest, subject_data_service_client::SubjectDataServiceClient},
};
use pdm_runtime::client::plain_channel_with;
use pdm_testkit::{Mesh, TestMesh, client_tls, eventually, fake::Person};
use pdm_tls::{config::Reloading, identity::Caller, layout};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const LIMIT: Duration = Duration::from_secs(10);

async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .start()
        .await
}

fn channel(
    mesh: &Mesh,
    service: &str,
    tls: Arc<Reloading<ClientConfig>>,
) -> anyhow::Result<Channel> {
    let addr = mesh
        .addr(service)
        .ok_or_else(|| anyhow::anyhow!("{service} is not running"))?;
    plain_channel_with(&format!("http://{addr}"), LIMIT, Some(tls))
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    Ok(HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    Ok(roots)
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_at_the_handshake() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    // It trusts the mesh's CA, but has no certificate of its own to show.
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&layout::ca_path(&mesh.certificate_dir()))?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let refused = health(channel(&mesh, "identity", Reloading::fixed(config))?).await;
    assert!(refused.is_err(), "answered without a client certificate");

    // Nor does plaintext get an answer.
    let addr = mesh.addr("identity").expect("identity runs");
    let plaintext = plain_channel_with(&format!("http://{addr}"), LIMIT, None)?;
    assert!(health(plaintext).await.is_err(), "answered in plaintext");

    // The same port answers a client with a certificate of the mesh.
    let allowed = mesh.channel_as("identity", &Caller::Client("billing".to_owned()))?;
    assert_eq!(health(allowed).await?, ServingStatus::Serving as i32);
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    // A well-formed certificate naming a real service of the mesh, from a CA it does not
    // trust; the client itself trusts the mesh's CA, so only the server can refuse.
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        layout::ca_path(&mesh.certificate_dir()),
        layout::ca_path(dir.path()),
    )?;
    let impostor = Authority::new("pdm.local", "someone else's CA")?;
    let rights = Caller::Service("rights".to_owned());
    write_identity(dir.path(), &impostor, &rights, &[])?;
    let refused = health(channel(
        &mesh,
        "identity",
        client_tls(dir.path(), &rights)?,
    )?)
    .await;
    assert!(refused.is_err(), "a certificate of another CA was accepted");
    Ok(())
}

#[tokio::test]
async fn callers_get_only_the_methods_the_policy_gives_them() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let erase = || EraseSubjectRequest {
        request_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
        subject_id: subject.clone(),
    };

    // Only rights may erase: telemetry, a company client and the privacy team may not.
    for caller in [
        Caller::Service("telemetry".to_owned()),
        Caller::Client("billing".to_owned()),
        Caller::Admin,
    ] {
        let err = SubjectDataServiceClient::new(mesh.channel_as("identity", &caller)?)
            .erase_subject(erase())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::PermissionDenied, "{caller}: {err:?}");
        assert!(err.message().contains(&caller.to_string()), "{err:?}");
    }
    // The account is still there.
    mesh.identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;

    // Telemetry may ask consent's checks and follow its ledger; transfers may check but
    // not follow the ledger; a company client may read an account.
    let telemetry = mesh.channel_as("consent", &Caller::Service("telemetry".to_owned()))?;
    ConsentServiceClient::new(telemetry.clone())
        .check_processing(CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".to_owned(),
            ..Default::default()
        })
        .await?;
    ConsentServiceClient::new(telemetry)
        .get_ledger_position(GetLedgerPositionRequest {})
        .await?;
    let err = ConsentServiceClient::new(
        mesh.channel_as("consent", &Caller::Service("transfers".to_owned()))?,
    )
    .get_ledger_position(GetLedgerPositionRequest {})
    .await
    .expect_err("transfers may not follow the ledger");
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut support = IdentityServiceClient::new(
        mesh.channel_as("identity", &Caller::Client("support".to_owned()))?,
    );
    // (once the subject signed in through it: a client sees only subjects it serves)
    support
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?;
    support
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;

    // Rights may erase.
    SubjectDataServiceClient::new(
        mesh.channel_as("identity", &Caller::Service("rights".to_owned()))?,
    )
    .erase_subject(erase())
    .await?;

    // Refusals are logged with the caller and method, never with personal data.
    let logs = mesh.logs().contents();
    let refusal = logs
        .lines()
        .find(|l| l.contains("refused by the authorisation policy") && l.contains("telemetry"))
        .unwrap_or_else(|| panic!("no refusal logged"));
    assert!(refusal.contains("EraseSubject"), "{refusal}");
    assert!(!refusal.contains(&subject), "{refusal}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn past_its_rate_a_caller_gets_resource_exhausted_and_others_do_not() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .setting("security.caller_rates.admin", 1.0)
        .start()
        .await?;
    let mut admin = ConsentServiceClient::new(mesh.channel_as("consent", &Caller::Admin)?);
    // A rate of 1 per second allows a burst of 2.
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(match admin.list_purposes(ListPurposesRequest {}).await {
            Ok(_) => Code::Ok,
            Err(err) => err.code(),
        });
    }
    assert_eq!(codes[..2], [Code::Ok, Code::Ok], "{codes:?}");
    assert!(codes[2..].contains(&Code::ResourceExhausted), "{codes:?}");
    // Health checks are never limited; another caller has a bucket of its own.
    for _ in 0..4 {
        assert_eq!(
            health(mesh.channel_as("consent", &Caller::Admin)?).await?,
            ServingStatus::Serving as i32
        );
    }
    ConsentServiceClient::new(mesh.channel_as("consent", &Caller::Client("app".to_owned()))?)
        .list_purposes(ListPurposesRequest {})
        .await?;
    Ok(())
}

/// A flood of refused calls is not a flood of log lines: refusals are logged once per
/// kind and window with the count left out (the metrics keep the exact numbers).
#[tokio::test]
async fn a_flood_of_refusals_writes_a_few_log_lines() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_consent::Consent)
        .setting("security.caller_rates.admin", 1.0)
        .start()
        .await?;
    let mut flood = ConsentServiceClient::new(mesh.channel_as("consent", &Caller::Admin)?);
    let mut refused = 0;
    for _ in 0..300 {
        if let Err(err) = flood.list_purposes(ListPurposesRequest {}).await {
            assert_eq!(err.code(), Code::ResourceExhausted);
            refused += 1;
        }
    }
    assert!(refused >= 290, "{refused} refused");
    let logs = mesh.logs().contents();
    let lines = logs
        .lines()
        .filter(|l| l.contains("\"admin\"") && l.contains("rate limit reached"))
        .count();
    // One line per server (the rate test above limits admin on a mesh of its own; both
    // run in this process and share the log capture).
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines for {refused} refusals"
    );
    Ok(())
}

/// Calls `health` until it gives `want` (true: answered), for at most `LIMIT`.
async fn health_becomes(
    what: &str,
    want: bool,
    mut connect: impl FnMut() -> anyhow::Result<Channel>,
) -> anyhow::Result<()> {
    eventually(what, LIMIT, || {
        let channel = connect();
        async move { Ok(health(channel?).await.is_ok() == want) }
    })
    .await
}

#[tokio::test]
async fn certificates_rotated_on_disk_are_used_without_a_restart() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let dir = mesh.certificate_dir();
    let ca = layout::ca_path(&dir);
    let old_ca = std::fs::read_to_string(&ca)?;
    let new = Authority::new("pdm.local", "pdm rotated CA")?;
    // A client of the new CA alone, trusting only the new CA.
    let client_dir = tempfile::tempdir()?;
    std::fs::write(layout::ca_path(client_dir.path()), &new.cert)?;
    let billing = Caller::Client("billing".to_owned());
    write_identity(client_dir.path(), &new, &billing, &[])?;
    let new_client = || channel(&mesh, "consent", client_tls(client_dir.path(), &billing)?);
    assert!(
        health(new_client()?).await.is_err(),
        "trusted before the rotation"
    );

    // Step one: trust both CAs and re-issue every service certificate from the new one.
    std::fs::write(&ca, format!("{old_ca}{}", new.cert))?;
    for service in ["identity", "consent"] {
        let names = service_dns_names(service, "pdm");
        write_identity(&dir, &new, &Caller::Service(service.to_owned()), &names)?;
    }
    health_becomes("the new CA trusted", true, new_client).await?;
    // Services still reach each other (consent asks identity for regions).
    let subject = mesh.sign_up(&Person::new()).await;
    assert!(subject.is_ok(), "{subject:?}");

    // Step two: retire the old CA; a client certificate it issued is refused from now on.
    std::fs::write(&ca, &new.cert)?;
    let old_client_dir = tempfile::tempdir()?;
    std::fs::write(layout::ca_path(old_client_dir.path()), &new.cert)?;
    std::fs::copy(
        layout::paths(&dir, &Caller::Admin).0,
        layout::paths(old_client_dir.path(), &Caller::Admin).0,
    )?;
    std::fs::copy(
        layout::paths(&dir, &Caller::Admin).1,
        layout::paths(old_client_dir.path(), &Caller::Admin).1,
    )?;
    health_becomes("the old CA retired", false, || {
        channel(
            &mesh,
            "consent",
            client_tls(old_client_dir.path(), &Caller::Admin)?,
        )
    })
    .await?;
    assert!(health(new_client()?).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn the_health_port_answers_probes_in_plaintext_and_nothing_else() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .setting("services.identity.health_port", port)
        .start()
        .await?;
    let probe = plain_channel_with(&format!("http://127.0.0.1:{port}"), LIMIT, None)?;
    assert_eq!(health(probe.clone()).await?, ServingStatus::Serving as i32);
    let err = IdentityServiceClient::new(probe)
        .get_account(GetAccountRequest {
            subject_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
        })
        .await
        .expect_err("only health is served there");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    drop(mesh);
    Ok(())
}

#[tokio::test]
async fn plaintext_is_served_only_when_configured_and_then_with_a_warning() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .setting("tls.enabled", false)
        .start()
        .await?;
    let addr = mesh.addr("identity").expect("identity runs");
    let plaintext = plain_channel_with(&format!("http://{addr}"), LIMIT, None)?;
    assert_eq!(health(plaintext).await?, ServingStatus::Serving as i32);
    assert!(
        mesh.logs()
            .contents()
            .contains("serving in plaintext (tls.enabled = false)"),
        "no warning"
    );
    Ok(())
}

/// Behind a mesh sidecar (`tls.enabled = false`) the caller is the one the sidecar names
/// in `x-forwarded-client-cert` or `l5d-client-id`, believed from loopback only; the
/// method policy applies as with TLS, and a call that names nobody is refused.
#[tokio::test]
async fn in_plaintext_the_sidecars_identity_header_names_the_caller() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .setting("tls.enabled", false)
        .setting("tls.plaintext_caller", "")
        .start()
        .await?;
    let addr = mesh.addr("consent").expect("consent runs");
    let plaintext = plain_channel_with(&format!("http://{addr}"), LIMIT, None)?;
    let as_caller = |header: Option<(&'static str, &str)>| {
        let mut request = tonic::Request::new(ListPurposesRequest {});
        if let Some((name, value)) = header {
            request
                .metadata_mut()
                .insert(name, value.parse().expect("ascii"));
        }
        request
    };
    let mut consent = ConsentServiceClient::new(plaintext.clone());

    // Nobody named: refused.
    let err = consent
        .list_purposes(as_caller(None))
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A company client named by Istio's header, or by Linkerd's: the policy lets it in.
    consent
        .list_purposes(as_caller(Some((
            "x-forwarded-client-cert",
            "By=spiffe://cluster.local/ns/pdm/sa/consent;URI=spiffe://cluster.local/ns/pdm/sa/client-shop",
        ))))
        .await?;
    consent
        .list_purposes(as_caller(Some((
            "l5d-client-id",
            "client-shop.pdm.serviceaccount.identity.linkerd.cluster.local",
        ))))
        .await?;
    // The policy still decides: telemetry may not erase, rights may.
    let erase = |who: &str| {
        let mut request = tonic::Request::new(EraseSubjectRequest {
            request_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
            subject_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
        });
        request.metadata_mut().insert(
            "x-forwarded-client-cert",
            format!("URI=spiffe://pdm.local/svc/{who}")
                .parse()
                .expect("ascii"),
        );
        request
    };
    let mut subject_data = SubjectDataServiceClient::new(plaintext);
    let err = subject_data
        .erase_subject(erase("telemetry"))
        .await
        .expect_err("telemetry may not erase");
    assert_eq!(err.code(), Code::PermissionDenied);
    subject_data.erase_subject(erase("rights")).await?;
    Ok(())
}
