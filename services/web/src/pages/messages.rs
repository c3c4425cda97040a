//! Messages: promotional messages switched off or on per channel (consent's
//! SetContactPreference); transactional, administrative and security messages are shown
//! as not optional.

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use pdm_proto::consent::v1::{Channel, GetConsentsRequest, SetContactPreferenceRequest, Source};
use serde::Deserialize;

use crate::{
    app::{AppState, SignedIn, problem, render, unavailable},
    views::{ChannelView, MessagesPage},
};

/// The channels offered, with their labels.
const CHANNELS: [(Channel, &str); 4] = [
    (Channel::Email, "Email"),
    (Channel::Sms, "Text messages"),
    (Channel::Push, "Push notifications"),
    (Channel::Ads, "Ads on other platforms"),
];

/// `GET /messages`.
pub async fn show(State(app): State<AppState>, who: SignedIn) -> Response {
    let state = match app
        .mesh
        .consent
        .clone()
        .get_consents(GetConsentsRequest {
            subject_id: who.subject().to_owned(),
        })
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return unavailable(&status),
    };
    let channels = CHANNELS
        .iter()
        .map(|(channel, label)| ChannelView {
            value: channel.as_str_name().to_owned(),
            label: (*label).to_owned(),
            opted_out: state.opted_out_channels.contains(&(*channel as i32)),
        })
        .collect();
    render(&MessagesPage {
        chrome: who.chrome,
        channels,
    })
}

/// A channel switch.
#[derive(Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    opted_out: String,
}

/// `POST /messages`.
pub async fn choose(
    State(app): State<AppState>,
    who: SignedIn,
    Form(input): Form<ChannelForm>,
) -> Response {
    let Some((channel, _)) = CHANNELS
        .iter()
        .find(|(c, _)| c.as_str_name() == input.channel)
    else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is no such channel.",
        );
    };
    let opted_out = match input.opted_out.as_str() {
        "true" => true,
        "false" => false,
        _ => return problem(StatusCode::UNPROCESSABLE_ENTITY, "Choose on or off."),
    };
    let written = app
        .mesh
        .consent
        .clone()
        .set_contact_preference(SetContactPreferenceRequest {
            subject_id: who.subject().to_owned(),
            channel: *channel as i32,
            opted_out,
            source: Source::WebForm as i32,
            actor: super::ACTOR.to_owned(),
        })
        .await;
    match written {
        Ok(_) => Redirect::to("/messages").into_response(),
        Err(status) => unavailable(&status),
    }
}
