//! Sign-in, sessions and credential checks ("How we use information": "verifying your
//! identity when you log in"; "Data Security & Protection": "Restricted access ... through
//! authentication and password mechanisms").

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::Duration;
use pdm_identity::Identity;
use pdm_proto::identity::v1::{
    self as pb, identity_service_client::IdentityServiceClient, verify_subject_request::Credential,
};
use pdm_runtime::{ManualClock, convert::from_timestamp, tonic_types::StatusExt};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{contains, field_violations, raw_storage, rows},
    fake::Person,
    start_time,
};
use pdm_tls::identity::Caller;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Status, transport::Channel};

async fn mesh_with_clock(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await
}

async fn sign_up(
    identity: &mut IdentityServiceClient<Channel>,
    person: &Person,
) -> anyhow::Result<String> {
    let account = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account");
    Ok(account.subject_id)
}

fn sign_in(email: &str, password: &str) -> pb::AuthenticateRequest {
    pb::AuthenticateRequest {
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

fn validate(token: &str) -> pb::ValidateSessionRequest {
    pb::ValidateSessionRequest {
        session_token: token.to_owned(),
    }
}

fn verify(subject_id: &str, credential: Credential) -> pb::VerifySubjectRequest {
    pb::VerifySubjectRequest {
        subject_id: subject_id.to_owned(),
        credential: Some(credential),
    }
}

fn retry_delay(status: &Status) -> StdDuration {
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "expected RESOURCE_EXHAUSTED, got {status:?}"
    );
    status
        .get_details_retry_info()
        .expect("a RetryInfo detail")
        .retry_delay
        .expect("a retry delay")
}

#[tokio::test]
async fn authenticate_gives_a_token_that_validates_to_its_subject() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    let session = identity
        .authenticate(sign_in(
            &format!(" {} ", person.email.to_uppercase()),
            &person.password,
        ))
        .await?
        .into_inner();
    assert_eq!(session.subject_id, subject);
    assert!(session.session_token.len() >= 32, "an opaque random token");
    let expires = session.expires_at.as_ref().and_then(from_timestamp);
    assert_eq!(
        expires,
        Some(start_time() + Duration::minutes(1440)),
        "the default lifetime is a day"
    );

    let valid = identity
        .validate_session(validate(&session.session_token))
        .await?
        .into_inner();
    assert_eq!(valid.subject_id, subject);
    assert_eq!(valid.expires_at, session.expires_at);

    let other = identity
        .authenticate(sign_in(&person.email, &person.password))
        .await?
        .into_inner();
    assert_ne!(
        other.session_token, session.session_token,
        "each sign-in gets its own token"
    );

    let err = identity
        .validate_session(validate("made-up-token"))
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .validate_session(validate(""))
        .await
        .expect_err("no token");
    assert_eq!(field_violations(&err), ["session_token"]);
    let err = identity
        .authenticate(sign_in("not-an-email", ""))
        .await
        .expect_err("bad input");
    assert_eq!(field_violations(&err), ["email", "password"]);

    let mut secrets = person.secrets();
    secrets.push(("session token", &session.session_token));
    secrets.push(("session token", &other.session_token));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_alike() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    sign_up(&mut identity, &person).await?;
    let stranger = Person::new();

    let wrong_password = identity
        .authenticate(sign_in(&person.email, &stranger.password))
        .await
        .expect_err("wrong password");
    let unknown_email = identity
        .authenticate(sign_in(&stranger.email, &person.password))
        .await
        .expect_err("unknown email");
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    assert_eq!(unknown_email.code(), wrong_password.code());
    assert_eq!(unknown_email.message(), wrong_password.message());
    assert_eq!(
        identity
            .authenticate(sign_in(&person.email, &person.password))
            .await?
            .into_inner()
            .subject_id
            .len(),
        36,
        "the right password still gets in"
    );

    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&stranger.secrets());
    Ok(())
}

#[tokio::test]
async fn after_five_failures_sign_in_waits_whether_or_not_the_address_has_an_account()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    sign_up(&mut identity, &person).await?;
    let stranger = Person::new(); // no account
    let bystander = Person::new();
    sign_up(&mut identity, &bystander).await?;

    for email in [&person.email, &stranger.email] {
        for attempt in 1..=5 {
            let err = identity
                .authenticate(sign_in(email, "wrong password, sorry"))
                .await
                .expect_err("wrong password");
            assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
        }
        let err = identity
            .authenticate(sign_in(email, &person.password))
            .await
            .expect_err("locked");
        assert_eq!(retry_delay(&err), StdDuration::from_secs(1));
    }
    // The lock is per address: someone else signs in as usual.
    identity
        .authenticate(sign_in(&bystander.email, &bystander.password))
        .await?;
    // Only blind indexes of the addresses tried are kept, never the addresses.
    let raw = raw_storage(&mesh, "identity").await;
    assert!(!contains(&raw, &stranger.email));
    assert!(!contains(&raw, &person.email));

    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&stranger.secrets());
    Ok(())
}

#[tokio::test]
async fn once_the_wait_is_over_the_right_password_gets_in_and_the_count_restarts()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let wrong = || sign_in(&person.email, "not the password at all");

    for _ in 0..5 {
        identity.authenticate(wrong()).await.expect_err("wrong");
    }
    let err = identity.authenticate(wrong()).await.expect_err("locked");
    assert_eq!(retry_delay(&err), StdDuration::from_secs(1));

    // Failing again after the wait doubles it.
    clock.advance(Duration::seconds(1));
    let err = identity.authenticate(wrong()).await.expect_err("wrong");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .authenticate(sign_in(&person.email, &person.password))
        .await
        .expect_err("locked again");
    assert_eq!(retry_delay(&err), StdDuration::from_secs(2));
    clock.advance(Duration::milliseconds(1500));
    let err = identity
        .authenticate(wrong())
        .await
        .expect_err("still locked");
    assert_eq!(retry_delay(&err), StdDuration::from_millis(500));

    clock.advance(Duration::milliseconds(500));
    let session = identity
        .authenticate(sign_in(&person.email, &person.password))
        .await?
        .into_inner();
    assert_eq!(session.subject_id, subject);

    // The success forgot the failures: five more are allowed before the first, shortest wait.
    for attempt in 1..=5 {
        let err = identity.authenticate(wrong()).await.expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    let err = identity.authenticate(wrong()).await.expect_err("locked");
    assert_eq!(retry_delay(&err), StdDuration::from_secs(1));

    let mut secrets = person.secrets();
    secrets.push(("session token", &session.session_token));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .setting("identity.session_ttl_minutes", 5)
        .start()
        .await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let session = identity
        .authenticate(sign_in(&person.email, &person.password))
        .await?
        .into_inner();
    assert_eq!(
        session.expires_at.as_ref().and_then(from_timestamp),
        Some(start_time() + Duration::minutes(5))
    );
    let token = Credential::SessionToken(session.session_token.clone());

    clock.advance(Duration::minutes(5) - Duration::seconds(1));
    identity
        .validate_session(validate(&session.session_token))
        .await?;
    identity
        .verify_subject(verify(&subject, token.clone()))
        .await?;

    clock.advance(Duration::seconds(1));
    let err = identity
        .validate_session(validate(&session.session_token))
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .verify_subject(verify(&subject, token))
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut secrets = person.secrets();
    secrets.push(("session token", &session.session_token));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn verify_subject_accepts_only_the_subjects_own_password_or_session() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let (ada, bob) = (Person::new(), Person::new());
    let a = sign_up(&mut identity, &ada).await?;
    let b = sign_up(&mut identity, &bob).await?;
    let ada_token = identity
        .authenticate(sign_in(&ada.email, &ada.password))
        .await?
        .into_inner()
        .session_token;
    let bob_token = identity
        .authenticate(sign_in(&bob.email, &bob.password))
        .await?
        .into_inner()
        .session_token;

    let ok = identity
        .verify_subject(verify(&a, Credential::Password(ada.password.clone())))
        .await?
        .into_inner();
    assert_eq!(ok.subject_id, a);
    let ok = identity
        .verify_subject(verify(&a, Credential::SessionToken(ada_token.clone())))
        .await?
        .into_inner();
    assert_eq!(ok.subject_id, a);

    let refused = [
        (
            "another subject's password",
            verify(&a, Credential::Password(bob.password.clone())),
        ),
        (
            "another subject's session",
            verify(&a, Credential::SessionToken(bob_token.clone())),
        ),
        (
            "an unknown subject",
            verify(
                &uuid::Uuid::now_v7().to_string(),
                Credential::Password(ada.password.clone()),
            ),
        ),
        (
            "a made-up token",
            verify(&b, Credential::SessionToken("made-up-token".into())),
        ),
    ];
    for (what, request) in refused {
        let err = identity.verify_subject(request).await.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}");
    }

    let err = identity
        .verify_subject(pb::VerifySubjectRequest {
            subject_id: a.clone(),
            credential: None,
        })
        .await
        .expect_err("no credential");
    assert_eq!(field_violations(&err), ["credential"]);
    let err = identity
        .verify_subject(verify("nope", Credential::Password(ada.password.clone())))
        .await
        .expect_err("malformed");
    assert_eq!(field_violations(&err), ["subject_id"]);

    let mut secrets = ada.secrets();
    secrets.extend(bob.secrets());
    secrets.push(("session token", &ada_token));
    secrets.push(("session token", &bob_token));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn verify_subject_password_checks_are_throttled_too() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    for _ in 0..5 {
        let err = identity
            .verify_subject(verify(
                &subject,
                Credential::Password("guess guess guess".into()),
            ))
            .await
            .expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let err = identity
        .verify_subject(verify(
            &subject,
            Credential::Password(person.password.clone()),
        ))
        .await
        .expect_err("locked");
    assert_eq!(retry_delay(&err), StdDuration::from_secs(1));
    clock.advance(Duration::seconds(1));
    identity
        .verify_subject(verify(
            &subject,
            Credential::Password(person.password.clone()),
        ))
        .await?;

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

/// Identity as company client `name` (its own certificate from the mesh's CA).
fn as_client(mesh: &Mesh, name: &str) -> anyhow::Result<IdentityServiceClient<Channel>> {
    let caller = Caller::Client(name.to_owned());
    Ok(IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &caller)?,
    ))
}

// "Restricted access ... through authentication and password mechanisms": guessing through
// one client locks that client out, never the person's other clients.
#[tokio::test]
async fn a_client_that_guesses_locks_out_only_itself() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;
    let guess = || Credential::Password("guess guess guess".into());
    let mut intruder = as_client(&mesh, "intruder")?;
    let mut shop = as_client(&mesh, "shop")?;
    // Both once served the person (a sign-in through each links it).
    for client in [&mut intruder, &mut shop] {
        client
            .authenticate(sign_in(&person.email, &person.password))
            .await?;
    }

    for _ in 0..5 {
        let err = intruder
            .verify_subject(verify(&subject, guess()))
            .await
            .expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated);
        let err = intruder
            .authenticate(sign_in(&person.email, "guess guess guess"))
            .await
            .expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // The guessing client is locked out, even with the right password...
    let right = || Credential::Password(person.password.clone());
    let err = intruder
        .verify_subject(verify(&subject, right()))
        .await
        .expect_err("locked");
    retry_delay(&err);
    let err = intruder
        .authenticate(sign_in(&person.email, &person.password))
        .await
        .expect_err("locked");
    retry_delay(&err);
    // ...while the person's own clients go on as usual.
    identity.verify_subject(verify(&subject, right())).await?;
    shop.verify_subject(verify(&subject, right())).await?;
    identity
        .authenticate(sign_in(&person.email, &person.password))
        .await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn guessing_spread_over_many_clients_is_slowed_down_never_locking_the_owner_out()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = sign_up(&mut identity, &person).await?;

    // Four failures from each of six clients: no pair is locked, but the account has
    // failed 24 times, past the account-wide threshold of 20.
    // Each client once served the person (sign-ins through it), then guesses.
    let mut clients = Vec::new();
    for n in 0..6 {
        let mut client = as_client(&mesh, &format!("c{n}"))?;
        client
            .authenticate(sign_in(&person.email, &person.password))
            .await?;
        clients.push(client);
    }
    for client in &mut clients {
        for _ in 0..4 {
            let err = client
                .verify_subject(verify(
                    &subject,
                    Credential::Password("guess guess guess".into()),
                ))
                .await
                .expect_err("wrong");
            assert_eq!(err.code(), Code::Unauthenticated);
        }
    }
    // The owner is slowed down, not refused; success resets the account-wide count.
    identity
        .verify_subject(verify(
            &subject,
            Credential::Password(person.password.clone()),
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn only_the_hash_of_a_session_token_is_stored() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    sign_up(&mut identity, &person).await?;
    let token = identity
        .authenticate(sign_in(&person.email, &person.password))
        .await?
        .into_inner()
        .session_token;

    let db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&db, "sessions").await, 1);
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM sessions",
        ))
        .await?
        .expect("a session row");
    let stored: Vec<u8> = row.try_get("", "token_hash")?;
    assert_eq!(stored, pdm_crypto::sha256(token.as_bytes()));
    assert!(
        !contains(&raw_storage(&mesh, "identity").await, &token),
        "the token itself is not stored"
    );

    let mut secrets = person.secrets();
    secrets.push(("session token", &token));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}
