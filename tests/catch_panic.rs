//! A handler that panics answers `INTERNAL` with an error id (logged with the id and the
//! method, never the panic's formatted message, which may hold request data); the
//! connection, the service and the next call carry on. A streamed answer that panics ends
//! with `INTERNAL` trailers.

mod support;

use pdm_proto::subject::v1 as pb;
use pdm_testkit::PANIC_SUBJECT;
use support::HandBuilt;
use tonic::Code;

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_next_call_is_served() -> anyhow::Result<()> {
    let logs = pdm_testkit::captured_logs();
    let server = HandBuilt::ready(&[]).await?;
    let mut client = server.client()?;
    server.gated.open();

    for _ in 0..3 {
        let status = client
            .restrict_subject(pb::RestrictSubjectRequest {
                subject_id: PANIC_SUBJECT.to_owned(),
                restricted: true,
                request_id: "r1".to_owned(),
            })
            .await
            .expect_err("the handler panics");
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(
            status.message().starts_with("internal error (id "),
            "{status:?}"
        );
        // The same connection answers the next call.
        let erased = client
            .erase_subject(pb::EraseSubjectRequest {
                request_id: "r2".to_owned(),
                subject_id: "someone".to_owned(),
            })
            .await?;
        assert!(erased.into_inner().receipt.is_some());
    }

    let log = logs.contents();
    assert!(log.contains("handler panicked"), "{log}");
    assert!(
        log.contains("RestrictSubject"),
        "the method is logged: {log}"
    );
    assert!(
        !log.contains(PANIC_SUBJECT),
        "the formatted panic message reached the log: {log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_that_panics_ends_with_internal() -> anyhow::Result<()> {
    let server = HandBuilt::ready(&[]).await?;
    let mut client = server.client()?;
    let mut stream = client
        .export_subject(pb::ExportSubjectRequest {
            subject_id: PANIC_SUBJECT.to_owned(),
            request_id: "r3".to_owned(),
        })
        .await?
        .into_inner();
    // tonic encodes ahead, so the record before the panic may or may not go out first.
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status.message().starts_with("internal error (id "),
        "{status:?}"
    );
    // The service still answers.
    let mut stream = client
        .export_subject(pb::ExportSubjectRequest {
            subject_id: "someone".to_owned(),
            request_id: "r4".to_owned(),
        })
        .await?
        .into_inner();
    assert!(stream.message().await?.is_none());
    Ok(())
}
