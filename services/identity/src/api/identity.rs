//! `pdm.identity.v1.IdentityService`.

use pdm_access_trail as audit;
use pdm_crypto::{random_token, sha256};
use pdm_proto::{
    consent::v1::{BatchCheckProcessingRequest, CheckItem, CheckProcessingRequest},
    identity::v1::{self as pb, identity_service_server::IdentityService},
    rights::v1::{
        CancelRequestRequest, Credential, SubmitRequestRequest, credential,
        rights_service_client::RightsServiceClient,
    },
};
use pdm_runtime::convert::timestamp;
use pdm_runtime::{SubjectId, client::TracedChannel, erasure::ReceiptError};
use pdm_tls::identity::Caller;
use tonic::{Code, Request, Response, Status};

use super::{IdentityApi, convert, requests};
use crate::{
    domain::{age, calendar, content, public_profile, special, throttle},
    error::{IdentityError, Result},
    store::{NewAccount, ProfileChanges},
};

/// Blind-index domain of the throttle for credential checks by subject id.
const VERIFY_THROTTLE: &str = "verify-subject";
/// Blind-index domain of the throttle for sign-ins by email.
const SIGN_IN_THROTTLE: &str = "sign-in";
/// The consent purpose of the organisation inferred from the email domain.
const ORGANISATION_PURPOSE: &str = "organisation_insights";

impl IdentityApi {
    /// Account deletion in the mesh: an erasure request to the rights service, which checks
    /// the password (asking this service), records the request durably and erases every
    /// service; this service's part is done at once, under the same request id, so the
    /// receipt is ready for the caller and the rights fan-out finds it done.
    async fn delete_through_rights(
        &self,
        mut rights: RightsServiceClient<TracedChannel>,
        subject: &SubjectId,
        password: String,
        client_reference: Option<String>,
        reason: pb::DeletionReason,
    ) -> Result<pb::DeleteAccountResponse> {
        let region = self.store.region(subject).await?;
        let (regime, kind) = crate::domain::regime::deletion_request(
            region.unwrap_or(pdm_proto::common::v1::Region::Other),
        );
        let submitted = rights
            .submit_request(SubmitRequestRequest {
                kind: kind as i32,
                regime: regime as i32,
                subject_id: subject.to_string(),
                credential: Some(Credential {
                    credential: Some(credential::Credential::Password(password)),
                }),
                client_reference: client_reference
                    .unwrap_or_else(|| format!("delete-account-{}", uuid::Uuid::now_v7())),
                // The reason travels with the erasure: the privacy team's report counts it.
                deletion_reason: reason.as_str_name().to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|status| rights_refusal(&status))?
            .into_inner()
            .request
            .ok_or(IdentityError::Internal("rights returned no request"))?;
        if submitted.subject_id != subject.to_string() {
            // Wrong password: the request waits unverified; withdraw it.
            let _ = rights
                .cancel_request(CancelRequestRequest {
                    request_id: submitted.request_id,
                    reason: "the password check failed at account deletion".into(),
                })
                .await;
            return Err(IdentityError::Unauthenticated);
        }
        let receipt = self
            .store
            .erase(
                &submitted.request_id,
                subject,
                reason.as_str_name(),
                self.clock.now(),
            )
            .await?;
        tracing::info!(subject_id = %subject, request_id = %submitted.request_id, "account deleted through the rights service");
        Ok(pb::DeleteAccountResponse {
            receipt: Some(receipt),
        })
    }

    /// Hashes on the bounded pool: argon2id takes tens of milliseconds and 19 MiB.
    async fn hash_password(&self, password: String) -> Result<String> {
        self.hashes.hash(password).await.map_err(pool_error)
    }

    /// Checks a password against a hash, or against a dummy hash when there is no account,
    /// so both answers take the same time.
    async fn password_matches(&self, password: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let matches = self
            .hashes
            .verify(password, hash)
            .await
            .map_err(pool_error)?;
        Ok(known && matches)
    }

    /// A password check for `account` (an email or a subject id) asked by `client`:
    /// refused while that (account, client) pair is locked, slowed down when the account
    /// has failed often across clients; failures counted at both levels, forgotten on
    /// success.
    async fn throttled_check(
        &self,
        domain: &str,
        account: &str,
        client: &str,
        password: String,
        hash: Option<String>,
    ) -> Result<()> {
        let pair = self
            .store
            .email_index(&throttle::pair_key(domain, account, client));
        let everyone = self
            .store
            .email_index(&throttle::account_key(domain, account));
        let now = self.clock.now();
        if let Some(wait) = self.store.sign_in_wait(&pair, now).await? {
            return Err(IdentityError::Throttled(wait.to_std().unwrap_or_default()));
        }
        let slow_down = throttle::slow_down(self.store.failure_count(&everyone).await?);
        if !slow_down.is_zero() {
            tokio::time::sleep(slow_down).await;
        }
        if self.password_matches(password, hash).await? {
            self.store.clear_failures(&pair).await?;
            self.store.clear_failures(&everyone).await?;
            Ok(())
        } else {
            self.store.record_failure(&pair, now).await?;
            self.store.record_failure(&everyone, now).await?;
            Err(IdentityError::Unauthenticated)
        }
    }

    async fn check_subject_password(
        &self,
        subject: &SubjectId,
        client: &str,
        password: String,
    ) -> Result<()> {
        let credentials = self.store.credentials(subject).await?;
        self.throttled_check(
            VERIFY_THROTTLE,
            &subject.to_string(),
            client,
            password,
            credentials.map(|c| c.password_hash),
        )
        .await
    }

    /// Links a company client with the subject; other callers are not recorded.
    async fn link(
        &self,
        caller: Option<&Caller>,
        subject: &SubjectId,
        how: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        if let Some(client @ Caller::Client(_)) = caller {
            self.store
                .link(subject, &client.to_string(), how, now)
                .await?;
        }
        Ok(())
    }

    /// A company client sees only subjects it is linked with; for others the answer is the
    /// one for a subject that does not exist. The privacy team and the mesh's services
    /// see every subject (their method rules already limit what they may call).
    async fn require_caller_link(
        &self,
        caller: Option<&Caller>,
        subject: &SubjectId,
    ) -> Result<()> {
        match caller {
            Some(client @ Caller::Client(_)) => {
                if self.store.linked(subject, &client.to_string()).await? {
                    Ok(())
                } else {
                    Err(IdentityError::NotFound)
                }
            }
            Some(Caller::Admin | Caller::Service(_)) => Ok(()),
            None => Err(IdentityError::NotFound),
        }
    }

    /// [`Self::require_caller_link`] for the caller of `request`.
    async fn require_link<T>(&self, request: &Request<T>, subject: &SubjectId) -> Result<()> {
        self.require_caller_link(request.extensions().get::<Caller>(), subject)
            .await
    }

    /// Policy, "Our policy towards the Children", at rectification: a birth date added or
    /// corrected later, or a move to another region, must leave an adult on the region's
    /// local date; otherwise nothing changes (FAILED_PRECONDITION). The account is not
    /// erased on that answer alone: a mistyped date must not close an adult's account; a
    /// report of a child's data goes to the rights service as an erasure request.
    async fn check_age_after(
        &self,
        subject: &SubjectId,
        changes: &ProfileChanges,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        if changes.birth_date.is_none() && changes.region.is_none() {
            return Ok(());
        }
        let profile = self
            .store
            .profile(subject)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let stored_birth = profile
            .birth_date
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let Some(birth) = changes.birth_date.or(stored_birth) else {
            return Ok(());
        };
        let region = changes.region.unwrap_or(profile.region);
        if age::is_adult_in(birth, region, now) {
            Ok(())
        } else {
            tracing::warn!(subject_id = %subject, "rectification refused: the account holder would be under 18");
            Err(IdentityError::Underage)
        }
    }

    /// Policy, "Consent to be obtained": "We always ask for your permission before
    /// collecting or using any sensitive personal details". Every special category
    /// declared needs the subject's explicit consent in force in the consent service;
    /// the missing ones are named (FAILED_PRECONDITION), and a consent service that does
    /// not answer refuses too (UNAVAILABLE): nothing is stored without the answer.
    async fn require_explicit_consent(
        &self,
        subject: &SubjectId,
        declared: &[pdm_proto::identity::v1::SpecialCategory],
    ) -> Result<()> {
        let purposes: Vec<&'static str> = declared
            .iter()
            .filter_map(|c| special::consent_purpose(*c))
            .collect();
        if purposes.is_empty() {
            return Ok(());
        }
        let items = purposes
            .iter()
            .map(|purpose| CheckItem {
                subject_id: subject.to_string(),
                purpose: (*purpose).to_owned(),
            })
            .collect();
        let decisions = self
            .consent
            .clone()
            .batch_check_processing(BatchCheckProcessingRequest {
                items,
                ..Default::default()
            })
            .await
            .map_err(|status| consent_refusal(&status))?
            .into_inner()
            .decisions;
        if decisions.len() != purposes.len() {
            return Err(IdentityError::Internal(
                "the consent service answered another number of checks",
            ));
        }
        let missing: Vec<&'static str> = purposes
            .into_iter()
            .zip(decisions)
            .filter(|(_, d)| !d.allowed)
            .map(|(purpose, _)| purpose)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            tracing::info!(subject_id = %subject, missing = missing.len(), "special categories refused without explicit consent");
            Err(IdentityError::NoExplicitConsent(missing))
        }
    }

    /// Asks consent whether `purpose` may be processed for the subject now; a consent
    /// service that does not answer refuses (UNAVAILABLE), never allows.
    async fn may_process(&self, subject: &SubjectId, purpose: &str) -> Result<bool> {
        let decision = self
            .consent
            .clone()
            .check_processing(CheckProcessingRequest {
                subject_id: subject.to_string(),
                purpose: purpose.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|status| consent_refusal(&status))?
            .into_inner()
            .decision;
        Ok(decision.is_some_and(|d| d.allowed))
    }

    async fn ensure_not_restricted(&self, subject: &SubjectId) -> Result<()> {
        match self.store.restricted(subject).await? {
            None => Err(IdentityError::NotFound),
            Some(true) => Err(IdentityError::Restricted),
            Some(false) => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let now = self.clock.now();
        let form = requests::sign_up(&r, calendar::latest_date_on_earth(now))?;
        // Policy, "Our policy towards the Children": no account for anyone under 18, and
        // nothing of theirs is stored. Birthdays count on the region's local date.
        if let Some(birth) = form.birth_date
            && !age::is_adult_in(birth, form.region, now)
        {
            return Err(IdentityError::Underage.into());
        }
        let password_hash = self.hash_password(r.password).await?;
        let subject = SubjectId::new_v7();
        let profile = self
            .store
            .create_account(
                NewAccount {
                    subject_id: subject,
                    first_name: form.first_name,
                    last_name: form.last_name,
                    email: form.email,
                    phone: form.phone,
                    region: form.region,
                    birth_date: form.birth_date,
                    password_hash,
                },
                now,
            )
            .await?;
        self.link(caller.as_ref(), &subject, "created", now).await?;
        tracing::info!(subject_id = %subject, "account created");
        let subject = profile.subject_id.clone();
        Ok(audit::respond(
            pb::CreateAccountResponse {
                account: Some(convert::account(profile)),
            },
            subject,
            "",
        ))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        let profile = self
            .store
            .profile(&subject)
            .await?
            .ok_or(IdentityError::NotFound)?;
        Ok(audit::respond(
            pb::GetAccountResponse {
                account: Some(convert::account(profile)),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_region(
        &self,
        request: Request<pb::GetRegionRequest>,
    ) -> Result<Response<pb::GetRegionResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        let region = self
            .store
            .region(&subject)
            .await?
            .ok_or(IdentityError::NotFound)?;
        Ok(audit::respond(
            pb::GetRegionResponse {
                region: region as i32,
            },
            subject.to_string(),
            "",
        ))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let now = self.clock.now();
        let (subject, changes) =
            requests::profile_changes(request.get_ref(), calendar::latest_date_on_earth(now))?;
        self.require_link(&request, &subject).await?;
        self.check_age_after(&subject, &changes, now).await?;
        let profile = self
            .store
            .update_profile(&subject, changes, now)
            .await?
            .ok_or(IdentityError::NotFound)?;
        tracing::info!(subject_id = %subject, "profile updated");
        Ok(audit::respond(
            pb::UpdateProfileResponse {
                account: Some(convert::account(profile)),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn set_profile_photo(
        &self,
        request: Request<pb::SetProfilePhotoRequest>,
    ) -> Result<Response<pb::SetProfilePhotoResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let mut v = pdm_runtime::FieldViolations::new();
        let subject = v.check("subject_id", r.subject_id.parse::<pdm_runtime::SubjectId>());
        let image = v.check("photo", content::check_photo(&r.photo));
        v.finish()?;
        let (Some(subject), Some(image)) = (subject, image) else {
            return Err(IdentityError::Internal("validated photo incomplete").into());
        };
        self.require_caller_link(caller.as_ref(), &subject).await?;
        self.ensure_not_restricted(&subject).await?;
        let size = r.photo.len();
        self.store
            .set_photo(&subject, image.mime(), r.photo, self.clock.now())
            .await?;
        Ok(audit::respond(
            pb::SetProfilePhotoResponse {
                content_type: image.mime().to_owned(),
                size_bytes: u64::try_from(size).unwrap_or(0),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_profile_photo(
        &self,
        request: Request<pb::GetProfilePhotoRequest>,
    ) -> Result<Response<pb::GetProfilePhotoResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        if self.store.restricted(&subject).await?.is_none() {
            return Err(IdentityError::NotFound.into());
        }
        let (content_type, photo) = self
            .store
            .photo(&subject)
            .await?
            .ok_or(IdentityError::Missing("profile photo"))?;
        Ok(audit::respond(
            pb::GetProfilePhotoResponse {
                content_type,
                photo,
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_public_profile(
        &self,
        request: Request<pb::GetPublicProfileRequest>,
    ) -> Result<Response<pb::GetPublicProfileResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        let profile = self
            .store
            .profile(&subject)
            .await?
            .ok_or(IdentityError::NotFound)?;
        // Art. 18 GDPR: showing a restricted subject to other users is processing beyond
        // storage, so there is no public profile while the restriction lasts.
        if profile.restricted {
            return Err(IdentityError::Missing("public profile").into());
        }
        Ok(audit::respond(
            pb::GetPublicProfileResponse {
                subject_id: subject.to_string(),
                display_name: public_profile::display_name(&profile.first_name, &profile.last_name),
                has_photo: profile.has_photo,
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        let profile = self
            .store
            .profile(&subject)
            .await?
            .ok_or(IdentityError::NotFound)?;
        // Policy: "We may use your email domain to understand which organization or
        // industry you're associated with", on legitimate interests: a restricted subject
        // or one who objected gets no inference (the same empty answer as free mail, so
        // the answer does not tell which).
        let organisation = match profile.organisation {
            Some(org) if !profile.restricted => {
                if self.may_process(&subject, ORGANISATION_PURPOSE).await? {
                    org
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        Ok(audit::respond(
            pb::GetOrganisationResponse { organisation },
            subject.to_string(),
            "",
        ))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let client = Caller::on_behalf_of(caller.as_ref(), request.metadata());
        let r = request.into_inner();
        let email = requests::sign_in(&r)?;
        let email_index = self.store.email_index(email.as_str());
        let credentials = self.store.credentials_by_email(&email_index).await?;
        let subject = credentials.as_ref().map(|c| c.subject_id.clone());
        self.throttled_check(
            SIGN_IN_THROTTLE,
            email.as_str(),
            &client,
            r.password,
            credentials.map(|c| c.password_hash),
        )
        .await?;
        let subject = subject.ok_or(IdentityError::Unauthenticated)?;
        let subject_id = stored_subject(&subject)?;
        self.link(caller.as_ref(), &subject_id, "signed_in", self.clock.now())
            .await?;
        let token = random_token(32).map_err(IdentityError::from)?;
        let expires_at = self
            .store
            .create_session(
                &subject_id,
                sha256(token.as_bytes()),
                self.clock.now(),
                self.settings.session_lifetime(),
            )
            .await?;
        Ok(audit::respond(
            pb::AuthenticateResponse {
                session_token: token,
                subject_id: subject.clone(),
                expires_at: Some(timestamp(expires_at)),
            },
            subject,
            "",
        ))
    }

    async fn validate_session(
        &self,
        request: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let token = &request.get_ref().session_token;
        if token.is_empty() || token.len() > 128 {
            return Err(pdm_runtime::error::invalid_field(
                "session_token",
                "required, at most 128 characters",
            ));
        }
        let (subject_id, expires_at) = self
            .store
            .live_session(&sha256(token.as_bytes()), self.clock.now())
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        Ok(audit::respond(
            pb::ValidateSessionResponse {
                subject_id: subject_id.clone(),
                expires_at: Some(timestamp(expires_at)),
            },
            subject_id,
            "",
        ))
    }

    async fn verify_subject(
        &self,
        request: Request<pb::VerifySubjectRequest>,
    ) -> Result<Response<pb::VerifySubjectResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let client = Caller::on_behalf_of(caller.as_ref(), request.metadata());
        let r = request.into_inner();
        let subject = requests::subject_id(&r.subject_id)?;
        // An unlinked client learns nothing, not even whether the subject exists.
        if self
            .require_caller_link(caller.as_ref(), &subject)
            .await
            .is_err()
        {
            return Err(IdentityError::Unauthenticated.into());
        }
        match r.credential {
            Some(pb::verify_subject_request::Credential::Password(password)) => {
                let mut v = pdm_runtime::FieldViolations::new();
                requests::check_password_present(&mut v, &password);
                v.finish()?;
                self.check_subject_password(&subject, &client, password)
                    .await?;
            }
            Some(pb::verify_subject_request::Credential::SessionToken(token)) => {
                if token.is_empty() || token.len() > 128 {
                    return Err(pdm_runtime::error::invalid_field(
                        "session_token",
                        "required, at most 128 characters",
                    ));
                }
                let live = self
                    .store
                    .live_session(&sha256(token.as_bytes()), self.clock.now())
                    .await?;
                if live.is_none_or(|(owner, _)| owner != subject.to_string()) {
                    return Err(IdentityError::Unauthenticated.into());
                }
            }
            None => {
                return Err(pdm_runtime::error::invalid_field(
                    "credential",
                    "a password or a session token is required",
                ));
            }
        }
        Ok(audit::respond(
            pb::VerifySubjectResponse {
                subject_id: subject.to_string(),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn set_billing_contact(
        &self,
        request: Request<pb::SetBillingContactRequest>,
    ) -> Result<Response<pb::SetBillingContactResponse>, Status> {
        let (subject, billing) = requests::billing(request.get_ref())?;
        self.require_link(&request, &subject).await?;
        self.ensure_not_restricted(&subject).await?;
        self.store
            .set_billing(&subject, &billing, self.clock.now())
            .await?;
        Ok(audit::respond(
            pb::SetBillingContactResponse {
                billing_contact: Some(convert::billing(billing)),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn get_billing_contact(
        &self,
        request: Request<pb::GetBillingContactRequest>,
    ) -> Result<Response<pb::GetBillingContactResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        if self.store.restricted(&subject).await?.is_none() {
            return Err(IdentityError::NotFound.into());
        }
        let billing = self
            .store
            .billing(&subject)
            .await?
            .ok_or(IdentityError::Missing("billing contact"))?;
        Ok(audit::respond(
            pb::GetBillingContactResponse {
                billing_contact: Some(convert::billing(billing)),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn create_support_ticket(
        &self,
        request: Request<pb::CreateSupportTicketRequest>,
    ) -> Result<Response<pb::CreateSupportTicketResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let (subject, ticket) = requests::ticket(request.into_inner())?;
        self.require_caller_link(caller.as_ref(), &subject).await?;
        self.ensure_not_restricted(&subject).await?;
        let declared = special::union(
            std::iter::once(ticket.special_categories.as_slice()).chain(
                ticket
                    .attachments
                    .iter()
                    .map(|a| a.special_categories.as_slice()),
            ),
        );
        self.require_explicit_consent(&subject, &declared).await?;
        let ticket = self
            .store
            .create_ticket(&subject, ticket, self.clock.now())
            .await?;
        tracing::info!(subject_id = %subject, ticket_id = %ticket.ticket_id, "support ticket opened");
        Ok(audit::respond(
            pb::CreateSupportTicketResponse {
                ticket: Some(convert::ticket(ticket)),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn list_support_tickets(
        &self,
        request: Request<pb::ListSupportTicketsRequest>,
    ) -> Result<Response<pb::ListSupportTicketsResponse>, Status> {
        let subject = requests::subject_id(&request.get_ref().subject_id)?;
        self.require_link(&request, &subject).await?;
        if self.store.restricted(&subject).await?.is_none() {
            return Err(IdentityError::NotFound.into());
        }
        let tickets = self.store.tickets(&subject, false).await?;
        Ok(audit::respond(
            pb::ListSupportTicketsResponse {
                tickets: tickets.into_iter().map(convert::ticket).collect(),
            },
            subject.to_string(),
            "",
        ))
    }

    async fn link_subject(
        &self,
        request: Request<pb::LinkSubjectRequest>,
    ) -> Result<Response<pb::LinkSubjectResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let token = &request.get_ref().session_token;
        if token.is_empty() || token.len() > 128 {
            return Err(pdm_runtime::error::invalid_field(
                "session_token",
                "required, at most 128 characters",
            ));
        }
        let now = self.clock.now();
        let (subject_id, _) = self
            .store
            .live_session(&sha256(token.as_bytes()), now)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        self.link(
            caller.as_ref(),
            &stored_subject(&subject_id)?,
            "linked",
            now,
        )
        .await?;
        tracing::info!(subject_id = %subject_id, "client linked with the subject by a session");
        Ok(audit::respond(
            pb::LinkSubjectResponse {
                subject_id: subject_id.clone(),
            },
            subject_id,
            "",
        ))
    }

    async fn check_relationship(
        &self,
        request: Request<pb::CheckRelationshipRequest>,
    ) -> Result<Response<pb::CheckRelationshipResponse>, Status> {
        let r = request.get_ref();
        let mut v = pdm_runtime::FieldViolations::new();
        let subject = v.check("subject_id", r.subject_id.parse::<pdm_runtime::SubjectId>());
        let client = match Caller::from_name(&r.client) {
            Some(client @ Caller::Client(_)) => Some(client),
            _ => {
                v.add("client", "a company client's name: client:<name>");
                None
            }
        };
        v.finish()?;
        let (Some(subject), Some(client)) = (subject, client) else {
            return Err(IdentityError::Internal("validated relationship incomplete").into());
        };
        let related = self.store.linked(&subject, &client.to_string()).await?;
        Ok(Response::new(pb::CheckRelationshipResponse { related }))
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let client = Caller::on_behalf_of(caller.as_ref(), request.metadata());
        let r = request.into_inner();
        let (subject, reason, request_id) = requests::deletion(&r)?;
        // A retry of a finished deletion gets its first receipt: once the account is gone
        // the password cannot be checked again. A request id of another subject falls
        // through to the password check, so it reveals nothing without credentials.
        if let Some(id) = &request_id {
            match self.store.erasure_receipt(id, &subject).await {
                Ok(Some(receipt)) => {
                    return Ok(Response::new(pb::DeleteAccountResponse {
                        receipt: Some(receipt),
                    }));
                }
                Ok(None) | Err(IdentityError::Receipt(ReceiptError::Reused)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // An unlinked client gets the answer for an unknown subject: a failed check. Once
        // the account is gone (and its links with it) a retry goes on to rights, which
        // answers it from the request the same client reference made.
        let exists = self.store.restricted(&subject).await?.is_some();
        if exists
            && self
                .require_caller_link(caller.as_ref(), &subject)
                .await
                .is_err()
        {
            return Err(IdentityError::Unauthenticated.into());
        }
        if let Some(rights) = &self.rights {
            return self
                .delete_through_rights(rights.clone(), &subject, r.password, request_id, reason)
                .await
                .map(|answer| audit::respond(answer, subject.to_string(), ""))
                .map_err(Into::into);
        }
        // Policy, account deletion step 4: "You may be asked to enter your password again
        // or provide a reason for deleting your account." We ask for both.
        self.check_subject_password(&subject, &client, r.password)
            .await?;
        let request_id =
            request_id.unwrap_or_else(|| format!("delete-account-{}", uuid::Uuid::now_v7()));
        let receipt = self
            .store
            .erase(
                &request_id,
                &subject,
                reason.as_str_name(),
                self.clock.now(),
            )
            .await?;
        tracing::info!(subject_id = %subject, %request_id, reason = reason.as_str_name(), "account deleted");
        Ok(audit::respond(
            pb::DeleteAccountResponse {
                receipt: Some(receipt),
            },
            subject.to_string(),
            request_id,
        ))
    }
}

/// A subject id read back from a column written from a [`SubjectId`].
fn stored_subject(id: &str) -> Result<SubjectId> {
    id.parse()
        .map_err(|_| IdentityError::Internal("stored subject id malformed"))
}

/// What identity answers when rights refuses the deletion request: only what a retry can
/// cure is `UNAVAILABLE`; a request id already used elsewhere is the caller's to change.
fn rights_refusal(status: &Status) -> IdentityError {
    use pdm_runtime::tonic_types::StatusExt as _;
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled => {
            tracing::warn!(code = ?status.code(), "rights service unavailable for an account deletion");
            IdentityError::Unavailable("rights service")
        }
        Code::InvalidArgument
            if status.get_details_bad_request().is_some_and(|b| {
                b.field_violations
                    .iter()
                    .any(|v| v.field == "client_reference")
            }) =>
        {
            IdentityError::Receipt(ReceiptError::Reused)
        }
        code => {
            tracing::error!(?code, "the rights service refused an account deletion");
            IdentityError::Internal("the rights service refused the deletion request")
        }
    }
}

/// What identity answers when consent does not answer a check: only what a retry can cure
/// is `UNAVAILABLE`; anything else is ours to fix (a policy that does not let identity
/// ask, a purpose missing from the catalogue), never the caller's.
fn consent_refusal(status: &Status) -> IdentityError {
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled => {
            tracing::warn!(code = ?status.code(), "consent service unavailable for a consent check");
            IdentityError::Unavailable("consent service")
        }
        code => {
            tracing::error!(?code, "the consent service refused a consent check");
            IdentityError::Internal("the consent service refused a consent check")
        }
    }
}

/// How long a caller turned away by a full hashing queue is asked to wait.
const HASHING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

fn pool_error(err: crate::hash_pool::PoolError) -> IdentityError {
    use crate::hash_pool::PoolError;
    match err {
        PoolError::Busy => IdentityError::HashingBusy(HASHING_RETRY),
        PoolError::Stopped => IdentityError::Unavailable("password hashing"),
        PoolError::Failed => IdentityError::Internal("password hashing failed"),
    }
}
