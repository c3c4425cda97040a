//! gRPC as bytes on the wire: requests built from the descriptors (JSON in, dynamic
//! messages out), sent as raw HTTP/2 bodies so the suite can send what no generated
//! client would (random bytes, a frame cut short, no message at all), and answers read
//! back as a status with its field violations and the messages, as JSON.

use std::{collections::BTreeSet, sync::LazyLock};

use anyhow::Context as _;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt as _;
use tower::Service as _;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(pdm_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
});

/// The descriptors of pdm's protos.
pub fn pool() -> anyhow::Result<&'static DescriptorPool> {
    POOL.as_ref()
        .map_err(|e| anyhow::anyhow!("descriptors: {e}"))
}

/// A method by its full name (`pdm.identity.v1.IdentityService/CreateAccount`).
pub fn method(full: &str) -> anyhow::Result<MethodDescriptor> {
    let (service, name) = full.split_once('/').context("Service/Method")?;
    pool()?
        .get_service_by_name(service)
        .with_context(|| format!("no service {service}"))?
        .methods()
        .find(|m| m.name() == name)
        .with_context(|| format!("no method {full}"))
}

/// `/package.Service/Method` of a method.
pub fn path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// A message from its proto3 JSON form.
pub fn from_json(
    descriptor: &MessageDescriptor,
    json: &serde_json::Value,
) -> anyhow::Result<DynamicMessage> {
    DynamicMessage::deserialize(descriptor.clone(), json)
        .with_context(|| format!("{} from {json}", descriptor.full_name()))
}

/// A message as proto3 JSON.
pub fn to_json(message: &DynamicMessage) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(message)?)
}

/// One message in a gRPC frame: uncompressed flag, big-endian length, bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out
}

/// What a call answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub code: Code,
    /// The status message.
    pub message: String,
    /// The fields named by `google.rpc.BadRequest` violations.
    pub violations: BTreeSet<String>,
    /// The response messages, in order.
    pub messages: Vec<Bytes>,
}

impl Answer {
    /// The response messages decoded as `output`, as JSON.
    pub fn json(&self, output: &MessageDescriptor) -> anyhow::Result<Vec<serde_json::Value>> {
        self.messages
            .iter()
            .map(|bytes| to_json(&DynamicMessage::decode(output.clone(), bytes.as_ref())?))
            .collect()
    }

    /// The first response message as JSON.
    pub fn first(&self, output: &MessageDescriptor) -> anyhow::Result<serde_json::Value> {
        self.json(output)?
            .into_iter()
            .next()
            .context("no response message")
    }
}

/// Sends `body` as the raw HTTP/2 body of a call to `path`, reads the whole answer. An
/// error means no gRPC status came back at all (a reset stream, a dropped connection).
pub async fn call_raw(channel: &Channel, path: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "30S")
        .body(tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {}),
        ))?;
    let mut channel = channel.clone();
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
    let response = channel.call(request).await?;
    let (parts, body) = response.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return Ok(answer(&status, Vec::new()));
    }
    let collected = body.collect().await.context("reading the answer's body")?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let mut data = collected.to_bytes();
    let mut messages = Vec::new();
    while data.remaining() >= 5 {
        let _compressed = data.get_u8();
        let len = usize::try_from(data.get_u32())?;
        anyhow::ensure!(data.remaining() >= len, "a response frame cut short");
        messages.push(data.split_to(len));
    }
    let status = tonic::Status::from_header_map(&trailers)
        .context("the answer ended without a grpc-status")?;
    Ok(answer(&status, messages))
}

fn answer(status: &tonic::Status, messages: Vec<Bytes>) -> Answer {
    let violations = status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    Answer {
        code: status.code(),
        message: status.message().to_owned(),
        violations,
        messages,
    }
}

/// Calls `method` with a request given as JSON.
pub async fn call_json(
    channel: &Channel,
    method: &MethodDescriptor,
    request: &serde_json::Value,
) -> anyhow::Result<Answer> {
    let message = from_json(&method.input(), request)?;
    call_raw(channel, &path(method), frame(&message.encode_to_vec())).await
}

/// Calls a method by its full name (`pdm.rights.v1.RightsService/SubmitRequest`) and
/// requires `OK`; returns the first response message as JSON.
pub async fn ok(
    channel: &Channel,
    full: &str,
    request: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let descriptor = method(full)?;
    let answer = call_json(channel, &descriptor, request).await?;
    anyhow::ensure!(
        answer.code == Code::Ok,
        "{full}: {:?} {} {:?}",
        answer.code,
        answer.message,
        answer.violations
    );
    answer.first(&descriptor.output())
}

/// Like [`call_raw`], but stops at the first response message (for streams that follow
/// changes until cancelled): `OK` with that message, or the status if one came first.
pub async fn call_raw_first(
    channel: &Channel,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<Answer> {
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "30S")
        .body(tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {}),
        ))?;
    let mut channel = channel.clone();
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
    let response = channel.call(request).await?;
    let (parts, mut body) = response.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return Ok(answer(&status, Vec::new()));
    }
    let mut data = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the answer's body")?;
        if let Some(trailers) = frame.trailers_ref() {
            let status = tonic::Status::from_header_map(trailers)
                .context("trailers without a grpc-status")?;
            return Ok(answer(&status, Vec::new()));
        }
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
        }
        if data.len() >= 5 {
            let len = usize::try_from(u32::from_be_bytes([data[1], data[2], data[3], data[4]]))?;
            if data.len() >= 5 + len {
                let message = data.split_to(5 + len).freeze().slice(5..);
                return Ok(Answer {
                    code: Code::Ok,
                    message: String::new(),
                    violations: BTreeSet::new(),
                    messages: vec![message],
                });
            }
        }
    }
    anyhow::bail!("the answer ended without a message or a status")
}
