//! Unsubscribe links: issued per promotional message, used once from the message.

use pdm_access_trail as audit;
use pdm_proto::consent::v1::{self as pb, Channel, LedgerEntryKind, Source};
use pdm_runtime::{SubjectId, convert::timestamp};
use pdm_tls::identity::Caller;
use tonic::{Response, Status};
use uuid::Uuid;

use super::{ConsentApi, convert, requests};
use crate::domain::token::Token;
use crate::{
    domain::unsubscribe::{self, ID_BYTES, LinkState},
    error::{ConsentError, Result},
    store::NewEntry,
};

/// Who the ledger names for an opt-out made by a link.
const ACTOR: &str = "unsubscribe-link";

impl ConsentApi {
    /// `IssueUnsubscribeLink`.
    pub(super) async fn issue_link(
        &self,
        caller: Option<&Caller>,
        r: &pb::IssueUnsubscribeLinkRequest,
    ) -> Result<Response<pb::IssueUnsubscribeLinkResponse>, Status> {
        let requests::LinkRequest { subject, channel } = requests::parse_issue_unsubscribe_link(r)?;
        self.known_subject(caller, &subject).await?;
        let id = pdm_crypto::random_token(ID_BYTES)
            .map_err(|_| ConsentError::Internal("no randomness for a link"))?;
        let now = self.inner.clock.now();
        let expires_at = now + self.inner.links.validity;
        self.inner
            .store
            .issue_link(&id, &subject, channel, now, expires_at)
            .await?;
        tracing::debug!(subject_id = %subject, channel = ?channel, "unsubscribe link issued");
        Ok(audit::respond(
            pb::IssueUnsubscribeLinkResponse {
                token: unsubscribe::token(&self.inner.links.index, &id),
                expires_at: Some(timestamp(expires_at)),
            },
            subject.to_string(),
            "",
        ))
    }

    /// `Unsubscribe`.
    pub(super) async fn unsubscribe_by_link(
        &self,
        r: &pb::UnsubscribeRequest,
    ) -> Result<Response<pb::UnsubscribeResponse>, Status> {
        // A forged or altered token is refused before anything is read.
        let id = requests::parse_unsubscribe(r, &self.inner.links.index)?;
        let link = self
            .inner
            .store
            .link(&id)
            .await?
            .ok_or(ConsentError::LinkNotFound)?;
        let subject = Uuid::parse_str(&link.subject_id)
            .map(SubjectId::from)
            .map_err(|_| ConsentError::Internal("a link with a malformed subject"))?;
        let channel = Channel::from_str_name(&link.channel)
            .ok_or(ConsentError::Internal("a link with an unknown channel"))?;
        let now = self.inner.clock.now();
        // The first use is in the ledger already: the current position covers it.
        let used = |position: i64| {
            Ok(audit::respond(
                pb::UnsubscribeResponse {
                    channel: channel as i32,
                    already_used: true,
                    entry: None,
                    consistency_token: Token::at(position).to_string(),
                },
                subject.to_string(),
                "",
            ))
        };
        match unsubscribe::state(link.expires_at, link.used_at, now) {
            LinkState::Used => return used(self.inner.store.max_seq().await?),
            LinkState::Expired => return Err(ConsentError::LinkExpired.into()),
            LinkState::Usable => {}
        }
        let entry = NewEntry {
            subject_id: subject,
            kind: LedgerEntryKind::OptOut,
            purpose: None,
            channel: Some(channel),
            source: Source::EmailLink,
            policy_version: None,
            text_hash: None,
            actor: Some(ACTOR.to_owned()),
            occurred_at: now,
        };
        // The link is used up in the transaction that records its opt-out, so it is spent
        // only with the opt-out stored; of two clicks racing one records, the other is told.
        let Some(rows) = self.record_using(Some(&id), &subject, vec![entry]).await? else {
            return used(self.inner.store.max_seq().await?);
        };
        tracing::info!(subject_id = %subject, channel = ?channel, "opted out by an unsubscribe link");
        Ok(audit::respond(
            pb::UnsubscribeResponse {
                channel: channel as i32,
                already_used: false,
                consistency_token: super::token_of(&rows),
                entry: rows.into_iter().next().map(convert::entry),
            },
            subject.to_string(),
            "",
        ))
    }
}
