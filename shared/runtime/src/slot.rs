//! A gRPC service the skeleton serves once the database is ready, with the mesh's message
//! limits applied: a service fills its [`Slot`] and cannot forget `server.max_message_bytes`.

use pdm_proto::{
    consent::v1::consent_service_server::{ConsentService, ConsentServiceServer},
    identity::v1::identity_service_server::{IdentityService, IdentityServiceServer},
    incidents::v1::{
        assessments_service_server::{AssessmentsService, AssessmentsServiceServer},
        incidents_service_server::{IncidentsService, IncidentsServiceServer},
    },
    retention::v1::retention_service_server::{RetentionService, RetentionServiceServer},
    rights::v1::rights_service_server::{RightsService, RightsServiceServer},
    subject::v1::subject_data_service_server::{SubjectDataService, SubjectDataServiceServer},
    telemetry::v1::telemetry_service_server::{TelemetryService, TelemetryServiceServer},
    transfers::v1::transfers_service_server::{TransfersService, TransfersServiceServer},
};

use crate::server::Deferred;

/// A generated gRPC server of a service whose message sizes can be bounded (the
/// skeleton's own `AuditService` keeps tonic's defaults, as before).
pub trait MessageLimits {
    /// The server, refusing to decode or encode messages over `bytes`.
    #[must_use]
    fn limit_messages(self, bytes: usize) -> Self;
}

macro_rules! message_limits {
    ($($server:ident: $service:ident),* $(,)?) => {
        $(
            impl<T: $service> MessageLimits for $server<T> {
                fn limit_messages(self, bytes: usize) -> Self {
                    self.max_decoding_message_size(bytes)
                        .max_encoding_message_size(bytes)
                }
            }
        )*
    };
}

message_limits!(
    AssessmentsServiceServer: AssessmentsService,
    ConsentServiceServer: ConsentService,
    IdentityServiceServer: IdentityService,
    IncidentsServiceServer: IncidentsService,
    RetentionServiceServer: RetentionService,
    RightsServiceServer: RightsService,
    SubjectDataServiceServer: SubjectDataService,
    TelemetryServiceServer: TelemetryService,
    TransfersServiceServer: TransfersService,
);

/// Where a service puts one of its gRPC servers once it is ready
/// ([`crate::server::GrpcServer::slot`]); until then calls answer `UNAVAILABLE`.
#[derive(Debug)]
pub struct Slot<S> {
    deferred: Deferred<S>,
    max_message_bytes: usize,
}

impl<S> Slot<S> {
    pub(crate) fn new(deferred: Deferred<S>, max_message_bytes: usize) -> Self {
        Self {
            deferred,
            max_message_bytes,
        }
    }
}

impl<S: MessageLimits> Slot<S> {
    /// Serves `server` from now on, its messages bounded by `server.max_message_bytes`.
    pub fn fill(self, server: S) {
        self.deferred
            .set(server.limit_messages(self.max_message_bytes));
    }
}
