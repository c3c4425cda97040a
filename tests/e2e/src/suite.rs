//! A started `pdm` with the methods each of its servers serves (asked by server
//! reflection, as any client can) and the world of the valid calls.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use prost_reflect::MethodDescriptor;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::{
    backend::Backend,
    grpc::{self, Answer},
    process::{Caller, Pdm},
    world::{self, Before, Fixture, Read, World},
};

/// The server's message limit (`server.max_message_bytes`, its default).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A running `pdm` and what the suite knows of it.
#[derive(Debug)]
pub struct Suite {
    /// The process.
    pub pdm: Pdm,
    /// The people and ids of the valid calls.
    pub world: World,
    /// Per server (`identity`, …), the pdm services it serves (`pdm.identity.v1.IdentityService`).
    pub served: BTreeMap<String, Vec<String>>,
}

impl Suite {
    /// Starts `pdm serve all` on the backend of `PDM_TEST_DATABASE`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// [`Suite::start`] with extra settings.
    pub async fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let backend = Backend::from_env().await?;
        // The scheduler's purge run would add rows while a test counts them.
        // Nor may the access trail's witnessing (a record a minute per service).
        let mut settings = vec![
            ("PDM__RETENTION__PURGE_INTERVAL_MINUTES", "100000"),
            ("PDM__AUDIT__WITNESS_INTERVAL_MS", "86400000"),
        ];
        settings.extend_from_slice(env);
        let pdm = Pdm::start_with(backend, &settings).await?;
        let mut served = BTreeMap::new();
        for server in pdm.services().to_vec() {
            served.insert(server.clone(), list_services(&pdm, &server).await?);
        }
        Ok(Self {
            pdm,
            world: world::people(),
            served,
        })
    }

    /// Every (server, method) of pdm's protos that a server serves.
    pub fn methods(&self) -> anyhow::Result<Vec<(String, MethodDescriptor)>> {
        let pool = grpc::pool()?;
        let mut out = Vec::new();
        for (server, services) in &self.served {
            for service in services {
                let Some(descriptor) = pool.get_service_by_name(service) else {
                    continue;
                };
                for method in descriptor.methods() {
                    out.push((server.clone(), method));
                }
            }
        }
        Ok(out)
    }

    /// The servers serving `service` (full name).
    pub fn servers_of(&self, service: &str) -> Vec<String> {
        self.served
            .iter()
            .filter(|(_, services)| services.iter().any(|s| s == service))
            .map(|(server, _)| server.clone())
            .collect()
    }

    /// Calls `method` on `server` as `caller` with a JSON request.
    pub async fn call(
        &self,
        server: &str,
        caller: Caller,
        method: &MethodDescriptor,
        request: &serde_json::Value,
        read: Read,
    ) -> anyhow::Result<Answer> {
        let channel = self.pdm.channel(server, caller)?;
        let message = grpc::from_json(&method.input(), request)?;
        let body = grpc::frame(&prost::Message::encode_to_vec(&message));
        match read {
            Read::All => grpc::call_raw(&channel, &grpc::path(method), body).await,
            Read::First => grpc::call_raw_first(&channel, &grpc::path(method), body).await,
        }
    }

    /// Sends a raw HTTP/2 body to `method` on `server`.
    pub async fn send_raw(
        &self,
        server: &str,
        caller: Caller,
        method: &MethodDescriptor,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let channel = self.pdm.channel(server, caller)?;
        grpc::call_raw(&channel, &grpc::path(method), body).await
    }

    /// Calls a method by name on its (first) server and requires `OK`; returns the first
    /// response message as JSON.
    pub async fn ok(
        &self,
        caller: Caller,
        method: &str,
        request: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let descriptor = grpc::method(method)?;
        let service = descriptor.parent_service().full_name().to_owned();
        let server = self
            .servers_of(&service)
            .into_iter()
            .next()
            .with_context(|| format!("nobody serves {service}"))?;
        grpc::ok(&self.pdm.channel(&server, caller)?, method, &request).await
    }

    /// Creates the world's three subjects and a request waiting for verification.
    pub async fn set_up_world(&mut self) -> anyhow::Result<()> {
        let [main, deleted, erased] = world::sign_ups(&self.world);
        let create = "pdm.identity.v1.IdentityService/CreateAccount";
        let id = |v: serde_json::Value| -> String {
            v["account"]["subjectId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        self.world.subject = id(self.ok(Caller::Client, create, main).await?);
        self.world.subject_delete = id(self.ok(Caller::Client, create, deleted).await?);
        self.world.subject_erase = id(self.ok(Caller::Client, create, erased).await?);
        let mut pending = Vec::new();
        for _ in 0..2 {
            let submitted = self
                .ok(
                    Caller::Client,
                    "pdm.rights.v1.RightsService/SubmitRequest",
                    serde_json::json!({"kind": "REQUEST_KIND_PORTABILITY",
                        "regime": "REGIME_UK_GDPR", "subjectId": self.world.subject}),
                )
                .await?;
            pending.push(
                submitted["request"]["requestId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        self.world.request_cancel = pending.pop().unwrap_or_default();
        self.world.request_pending = pending.pop().unwrap_or_default();
        anyhow::ensure!(
            !self.world.subject.is_empty() && !self.world.request_cancel.is_empty(),
            "set-up answered without ids"
        );
        Ok(())
    }

    /// Runs one fixture on every server that serves its method; returns the answers.
    pub async fn run(&mut self, fixture: &Fixture) -> anyhow::Result<Vec<(String, Answer)>> {
        let method = grpc::method(fixture.method)?;
        if fixture.before == Before::RequestCompleted {
            let id = self.world.request_id.clone();
            self.wait_completed(&id).await?;
            if self.world.download_token.is_empty() {
                // The client that submitted it gets its download token the first time it
                // sees it completed.
                let seen = self
                    .ok(
                        Caller::Client,
                        "pdm.rights.v1.RightsService/GetRequest",
                        serde_json::json!({"requestId": id}),
                    )
                    .await?;
                self.world.download_token = token_in(&seen);
            }
        }
        let request = (fixture.request)(&self.world);
        let mut answers = Vec::new();
        for server in self.servers_of(method.parent_service().full_name()) {
            let answer = self
                .call(&server, fixture.caller, &method, &request, fixture.read)
                .await
                .with_context(|| format!("{} on {server}", fixture.method))?;
            if answer.code == Code::Ok
                && let Some(first) = answer.json(&method.output())?.into_iter().next()
            {
                let token = token_in(&first);
                if !token.is_empty() {
                    self.world.download_token = token;
                }
                if let Some(capture) = fixture.capture {
                    capture(&mut self.world, &first);
                }
            }
            answers.push((server, answer));
        }
        Ok(answers)
    }

    /// Waits until a request is `STATUS_COMPLETED`.
    pub async fn wait_completed(&self, request_id: &str) -> anyhow::Result<serde_json::Value> {
        let started = std::time::Instant::now();
        loop {
            let answer = self
                .ok(
                    Caller::Admin,
                    "pdm.rights.v1.RightsService/GetRequest",
                    serde_json::json!({"requestId": request_id}),
                )
                .await?;
            if answer["request"]["status"] == "STATUS_COMPLETED" {
                return Ok(answer);
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "request {request_id} not completed after 2 minutes: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Row counts once they stop changing (background writers such as the access
    /// trail's settle first).
    pub async fn settled_row_counts(&self) -> anyhow::Result<crate::backend::RowCounts> {
        let dir = self.pdm.data_dir();
        let mut last = self.pdm.backend().row_counts(&dir).await?;
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.pdm.backend().row_counts(&dir).await?;
            if now == last {
                return Ok(now);
            }
            last = now;
        }
        anyhow::bail!("row counts did not settle in 30 s")
    }

    /// Stops the process with SIGTERM (it must exit cleanly), checks that none of the
    /// world's personal values is in what it logged, and drops a PostgreSQL database.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.pdm.terminate().await?;
        let log = self.pdm.log()?;
        let leaked: Vec<&String> = self
            .world
            .personal
            .iter()
            .filter(|value| !value.is_empty() && log.contains(value.as_str()))
            .collect();
        self.pdm.backend().drop_database().await?;
        anyhow::ensure!(leaked.is_empty(), "personal data in the logs: {leaked:?}");
        Ok(())
    }
}

/// A number below `limit`, for the moment of a kill (half of `limit` if the system has
/// no randomness to give).
pub fn random_below(limit: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return limit / 2;
    }
    u64::from_le_bytes(bytes) % limit.max(1)
}

/// The download token a request answer carries, if any.
fn token_in(answer: &serde_json::Value) -> String {
    answer["request"]["downloadToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The pdm services a server lists through reflection.
async fn list_services(pdm: &Pdm, server: &str) -> anyhow::Result<Vec<String>> {
    let mut client = ServerReflectionClient::new(pdm.channel(server, Caller::Admin)?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let Some(response) = responses.next().await else {
        anyhow::bail!("{server}: no reflection answer");
    };
    match response?.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => Ok(list
            .service
            .into_iter()
            .map(|s| s.name)
            .filter(|name| name.starts_with("pdm."))
            .collect()),
        other => anyhow::bail!("{server}: unexpected reflection answer {other:?}"),
    }
}
