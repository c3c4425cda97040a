//! Every call ends by its deadline, and a busy server sheds load instead of queueing
//! (docs/operations.md: `server.request_timeout_ms`, "a shorter grpc-timeout wins → DEADLINE_EXCEEDED";
//! `server.concurrency_limit`, "beyond → RESOURCE_EXHAUSTED").

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use pdm_proto::subject::v1::{
    ExportSubjectRequest, subject_data_service_client::SubjectDataServiceClient,
};
use support::{HandBuilt, call_end_of_trace, erase, health_of, random_trace_id, traceparent};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::{Code, Request, transport::Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_handler_outliving_the_server_bound_answers_deadline_exceeded() -> anyhow::Result<()> {
    let server = HandBuilt::ready(&[("server.request_timeout_ms", "300")]).await?;
    let mut client = server.client()?;

    let started = Instant::now();
    let err = client
        .erase_subject(erase("too-slow"))
        .await
        .expect_err("the handler never returns");
    let elapsed = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < LIMIT,
        "answered after {elapsed:?}"
    );
    // The late handler is stopped, not left running.
    server.gated.wait_running(0, LIMIT).await?;

    // A caller asking for more time than the server allows still gets the server's bound.
    let mut request = Request::new(erase("asks-too-much"));
    request.set_timeout(Duration::from_secs(60));
    let started = Instant::now();
    let err = client.erase_subject(request).await.expect_err("too slow");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < LIMIT, "{:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn a_shorter_client_grpc_timeout_wins() -> anyhow::Result<()> {
    // The server would wait ten minutes; every caller's own deadline is far shorter.
    let server = HandBuilt::ready(&[("server.request_timeout_ms", "600000")]).await?;
    // A caller gives up at its deadline too (resetting the call), which would hide what
    // the server does: the proxy keeps the resets from the server.
    let proxy = proxy_without_resets(server.addr).await?;
    let client = SubjectDataServiceClient::new(
        Endpoint::from_shared(format!("http://{proxy}"))?.connect_lazy(),
    );
    // Connected before the clocks start: the deadlines are for the calls.
    client
        .clone()
        .export_subject(ExportSubjectRequest::default())
        .await?;

    // Rounds of concurrent calls with deadlines of different lengths, each call in a trace
    // of its own so the server's answer to it can be read in the server's logs: the
    // answer must not depend on how the timers happen to line up.
    for round in 0..4u64 {
        let calls = (0..50u64).map(|i| {
            let mut client = client.clone();
            async move {
                let deadline = Duration::from_millis(50 + 3 * i);
                let trace_id = random_trace_id();
                let mut request = Request::new(erase(&format!("short-{round}-{i}")));
                request.set_timeout(deadline);
                request
                    .metadata_mut()
                    .insert("traceparent", traceparent(&trace_id).parse()?);
                let started = Instant::now();
                let result = client.erase_subject(request).await;
                anyhow::Ok((trace_id, deadline, result, started.elapsed()))
            }
        });
        for call in join_all(calls).await {
            let (trace_id, deadline, result, elapsed) = call?;
            let err = result.expect_err("the handler never returns");
            // The server answers DEADLINE_EXCEEDED; tonic's client also enforces the
            // deadline it sends, and reports its own expiry as CANCELLED ("Timeout
            // expired"). Nothing else (INTERNAL, UNKNOWN, a server-sent CANCELLED) will do.
            assert!(
                err.code() == Code::DeadlineExceeded || expired_in_the_client(&err),
                "{err:?}"
            );
            assert!(
                elapsed >= deadline && elapsed < LIMIT,
                "deadline {deadline:?}, answered after {elapsed:?}"
            );
            // The server itself ended the call at the caller's deadline, answering
            // DEADLINE_EXCEEDED (not tonic's own CANCELLED "Timeout expired").
            let end = call_end_of_trace(&trace_id, LIMIT).await?;
            assert_eq!(end["fields"]["code"], "DeadlineExceeded", "{end}");
        }
    }
    // No handler keeps running towards the server's own ten-minute bound.
    server.gated.wait_running(0, LIMIT).await?;
    Ok(())
}

#[tokio::test]
async fn a_call_its_caller_gives_up_on_still_has_its_line() -> anyhow::Result<()> {
    let server = HandBuilt::ready(&[]).await?;
    let mut client = server.client()?;
    let trace_id = random_trace_id();
    let mut request = Request::new(erase("abandoned"));
    request
        .metadata_mut()
        .insert("traceparent", traceparent(&trace_id).parse()?);
    let call = tokio::spawn(async move { client.erase_subject(request).await });
    server.gated.wait_running(1, LIMIT).await?;
    // The caller goes away mid-call (its client resets the stream).
    call.abort();

    // The server drops the call and says so, in the call's trace.
    server.gated.wait_running(0, LIMIT).await?;
    let end = call_end_of_trace(&trace_id, LIMIT).await?;
    assert_eq!(end["fields"]["message"], "call cancelled", "{end}");
    assert_eq!(end["fields"]["code"], "Cancelled", "{end}");
    assert_eq!(end["span"]["rpc.grpc.status_code"], 1, "{end}");
    Ok(())
}

/// A TCP proxy to `upstream` that forwards every HTTP/2 frame but the client's
/// RST_STREAM: the server never learns that a caller gave up.
async fn proxy_without_resets(upstream: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                // No Nagle delays: a frame is forwarded the moment it is read.
                if client.set_nodelay(true).is_err() || server.set_nodelay(true).is_err() {
                    return;
                }
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                let _ = forward_without_resets(&mut from_client, &mut to_server).await;
            });
        }
    });
    Ok(addr)
}

async fn forward_without_resets(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    const PREFACE_LEN: usize = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    const RST_STREAM: u8 = 0x3;
    let mut preface = [0u8; PREFACE_LEN];
    from.read_exact(&mut preface).await?;
    to.write_all(&preface).await?;
    loop {
        // length (24 bits), type, flags, stream id (32 bits), then the payload
        let mut header = [0u8; 9];
        from.read_exact(&mut header).await?;
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]);
        let mut payload = vec![0u8; length as usize];
        from.read_exact(&mut payload).await?;
        if header[3] == RST_STREAM {
            continue;
        }
        let mut frame = header.to_vec();
        frame.extend(payload);
        to.write_all(&frame).await?;
    }
}

/// Whether the call failed on the client's own timer (tonic's `TimeoutExpired`) rather
/// than with an answer from the server.
fn expired_in_the_client(err: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.is::<tonic::TimeoutExpired>() {
            return err.code() == Code::Cancelled;
        }
        source = cause.source();
    }
    false
}

#[tokio::test]
async fn beyond_the_concurrency_limit_calls_are_refused_at_once_but_health_answers()
-> anyhow::Result<()> {
    let server = HandBuilt::ready(&[("server.concurrency_limit", "2")]).await?;

    // Two slow calls, each on a connection of its own: the budget is per server.
    let mut first = server.client()?;
    let mut second = server.client()?;
    let in_flight = [
        tokio::spawn(async move { first.erase_subject(erase("first")).await }),
        tokio::spawn(async move { second.erase_subject(erase("second")).await }),
    ];
    server.gated.wait_running(2, LIMIT).await?;

    let started = Instant::now();
    let err = server
        .client()?
        .erase_subject(erase("third"))
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not queued: {:?}",
        started.elapsed()
    );
    assert_eq!(server.gated.running(), 2, "the third call never ran");

    // Probes are never shed.
    let mut health = server.health()?;
    assert_eq!(health_of(&mut health, "").await?, ServingStatus::Serving);

    server.gated.open();
    for call in in_flight {
        let answered = tokio::time::timeout(LIMIT, call).await??;
        assert!(answered.is_ok(), "{answered:?}");
    }
    // The budget is given back when calls end.
    let again = server.client()?.erase_subject(erase("after")).await;
    assert!(again.is_ok(), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn a_timed_out_call_gives_its_place_back() -> anyhow::Result<()> {
    let server = HandBuilt::ready(&[
        ("server.concurrency_limit", "1"),
        ("server.request_timeout_ms", "200"),
    ])
    .await?;
    let mut client = server.client()?;
    let err = client
        .erase_subject(erase("times-out"))
        .await
        .expect_err("slow");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");

    server.gated.open();
    let answered = client.erase_subject(erase("next")).await;
    assert!(
        answered.is_ok(),
        "the only place must be free again: {answered:?}"
    );
    Ok(())
}
