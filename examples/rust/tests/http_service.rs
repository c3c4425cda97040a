//! The HTTP service against real identity and consent, over a real TCP connection: a
//! request about a subject who granted the purpose reaches the handler (200); one about
//! a subject who withdrew is refused with 403 and the reason before the handler runs
//! ("You may withdraw your consent at any time"); one without a subject gets 400.

use std::{
    io::{Read, Write},
    net::SocketAddr,
    time::Duration,
};

use pdm_client::{ConsentGate, GateOptions, PdmClient, consent::Grant};
use pdm_consent::Consent;
use pdm_examples::http_service::{self, SUBJECT_HEADER};
use pdm_identity::Identity;
use pdm_proto::common::v1::Region;
use pdm_testkit::{Mesh, TEST_CLIENT, TestMesh, fake::Person};

const PURPOSE: &str = "product_analytics";
const EVENTS: &str = r#"{"feature":"search"}"#;

fn client_of(mesh: &Mesh) -> anyhow::Result<PdmClient> {
    let addr = mesh
        .addr("consent")
        .ok_or_else(|| anyhow::anyhow!("consent is not running"))?;
    let mut builder = PdmClient::builder().endpoint("consent", format!("http://{addr}"));
    if mesh.settings().tls.enabled {
        builder = builder.client_certificates(mesh.certificate_dir(), TEST_CLIENT);
    }
    Ok(builder.build()?)
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject_id: subject.to_owned(),
        purpose: PURPOSE.to_owned(),
        policy_version: "2024-06-28".to_owned(),
        text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".to_owned(),
        actor: "onboarding".to_owned(),
    }
}

async fn eea_subject(mesh: &Mesh) -> anyhow::Result<String> {
    mesh.sign_up(&Person {
        region: Region::Eea,
        ..Person::new()
    })
    .await
}

/// One HTTP/1.1 request over its own TCP connection (plain std I/O on a blocking thread:
/// nothing here shares the server's code); the status and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    subject: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let header = subject.map_or(String::new(), |s| format!("{SUBJECT_HEADER}: {s}\r\n"));
    let text = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{header}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{EVENTS}",
        EVENTS.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(text.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not an HTTP answer: {answer:?}"))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.trim().to_owned())
            .unwrap_or_default();
        Ok((status, body))
    })
    .await?
}

#[tokio::test]
async fn a_subject_who_withdrew_is_refused_before_the_handler() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client_of(&mesh)?.consent()?;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let (granted, withdrew) = (eea_subject(&mesh).await?, eea_subject(&mesh).await?);
    consent.grant(&grant(&granted)).await?;
    consent.grant(&grant(&withdrew)).await?;
    let withdrawal = consent
        .withdraw(&withdrew, PURPOSE, "settings-page")
        .await?;
    // Read-your-writes on the service: every write above is applied there.
    assert!(
        !consent
            .check(&withdrew, PURPOSE, Some(&withdrawal.token))
            .await?
            .allowed
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http_service::run(
        listener,
        http_service::app(gate, PURPOSE),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let ok = request(addr, "POST", "/events", Some(&granted)).await?;
    assert_eq!(
        ok,
        (200, format!("accepted {} bytes of events", EVENTS.len()))
    );
    let refused = request(addr, "POST", "/events", Some(&withdrew)).await?;
    assert_eq!(refused, (403, "refused: withdrawn".to_owned()));
    let anonymous = request(addr, "POST", "/events", None).await?;
    assert_eq!(anonymous.0, 400, "{anonymous:?}");
    let not_a_subject = request(addr, "POST", "/events", Some("not-a-uuid")).await?;
    assert_eq!(not_a_subject.0, 403, "{not_a_subject:?}");
    let health = request(addr, "GET", "/healthz", None).await?;
    assert_eq!(health, (200, "ok".to_owned()));

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await??;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
    Ok(())
}
