use std::path::Path;

use chrono::Utc;

use super::model::{StoreState, StoredKey, StoredRole, StoredUser};
use super::*;
use crate::config::Config;
use crate::policy::{Context, Request};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTACCESSKEY0001"
secret_access_key = "rootsecretrootsecret"
[upstream]
endpoint = "embedded"
[[users]]
name = "issuer"
groups = ["uploaders"]
access_keys = [{ access_key_id = "ISSUERKEY00000001", secret_access_key = "issuersecretissuer" }]
[[groups]]
name = "uploaders"
policies = [{ name = "uploads", document = '''{"Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::uploads/*"},
  {"Effect": "Allow", "Action": "sts:GetFederationToken", "Resource": "*"}]}''' }]
"#;

fn keys() -> Arc<SessionKeys> {
    Arc::new(SessionKeys::from_keys(&[("k1", [9; 32])], 16))
}

fn directory(state: &StoreState) -> Directory {
    let config = Config::from_toml(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    Directory::from_config(&config)
        .unwrap()
        .with_sessions(keys())
        .with_store(state)
        .unwrap()
}

fn claims(dir: &Directory, kind: SessionKind, policy: Option<&str>) -> SessionClaims {
    let issuer = dir.user("issuer").unwrap();
    SessionClaims {
        kind,
        access_key_id: "ASIATESTTESTTEST0001".into(),
        secret_access_key: "s".into(),
        parent_is_root: false,
        parent_name: "issuer".into(),
        parent_id: issuer.user_id.clone(),
        parent_key: Some("ISSUERKEY00000001".into()),
        name: "alice".into(),
        issued_ms: Utc::now().timestamp_millis(),
        expires: Utc::now().timestamp() + 900,
        policy: policy.map(str::to_string),
        policy_arns: vec![],
        tags: vec![],
        transitive: vec![],
        web_identity: None,
    }
}

fn principal(dir: &Directory, c: &SessionClaims) -> Result<Principal, SessionRefusal> {
    let sessions = dir.sessions().unwrap();
    let token = sessions.seal(c).unwrap();
    let opened = sessions.open(&c.access_key_id, &token, Utc::now()).unwrap();
    Principal::for_session(dir, opened)
}

fn allowed(dir: &Directory, p: &Principal, action: &str, resource: &str) -> bool {
    let mut ctx = Context::new();
    p.fill_context(&mut ctx);
    dir.authorize(
        p,
        &Request {
            action,
            resource,
            context: &ctx,
        },
    )
    .allowed
}

const ALICE_ONLY: &str = r#"{"Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::uploads/alice/*"}]}"#;

#[test]
fn a_federated_session_is_the_intersection_of_parent_and_session_policy() {
    let dir = directory(&StoreState::empty());
    let p = principal(
        &dir,
        &claims(&dir, SessionKind::Federated, Some(ALICE_ONLY)),
    )
    .unwrap();
    assert_eq!(p.kind, PrincipalKind::FederatedUser);
    assert_eq!(p.arn, "arn:aws:sts::000000000000:federated-user/alice");
    assert_eq!(p.user_id, "000000000000:alice");
    assert!(allowed(
        &dir,
        &p,
        "s3:PutObject",
        "arn:aws:s3:::uploads/alice/x"
    ));
    assert!(!allowed(
        &dir,
        &p,
        "s3:PutObject",
        "arn:aws:s3:::uploads/bob/x"
    ));
    // The session policy allows DeleteObject; the issuer does not: never granted.
    assert!(!allowed(
        &dir,
        &p,
        "s3:DeleteObject",
        "arn:aws:s3:::uploads/alice/x"
    ));
}

#[test]
fn a_federated_session_without_a_session_policy_has_no_permissions() {
    let dir = directory(&StoreState::empty());
    let p = principal(&dir, &claims(&dir, SessionKind::Federated, None)).unwrap();
    assert!(!allowed(
        &dir,
        &p,
        "s3:GetObject",
        "arn:aws:s3:::uploads/alice/x"
    ));
}

#[test]
fn a_session_token_user_session_has_the_users_permissions_and_context_keys() {
    let dir = directory(&StoreState::empty());
    let p = principal(&dir, &claims(&dir, SessionKind::User, None)).unwrap();
    assert_eq!(p.kind, PrincipalKind::User);
    assert!(allowed(
        &dir,
        &p,
        "s3:GetObject",
        "arn:aws:s3:::uploads/anyone/x"
    ));
    let mut ctx = Context::new();
    p.fill_context(&mut ctx);
    assert!(ctx.get("aws:TokenIssueTime").is_some());
    assert!(ctx.get("aws:username").is_some());
    assert!(ctx.get("aws:MultiFactorAuthPresent").is_some());
}

fn store_user(name: &str, key_active: bool) -> StoreState {
    let mut state = StoreState::empty();
    state.users.insert(
        name.to_ascii_lowercase(),
        StoredUser {
            name: name.into(),
            path: "/".into(),
            user_id: "AIDASTOREUSER000001".into(),
            created: Utc::now(),
            groups: vec!["uploaders".into()],
            policies: Default::default(),
            attached: vec![],
            access_keys: vec![StoredKey {
                access_key_id: "AKIASTOREKEY0000001".into(),
                secret_access_key: "storesecretstoresecret".into(),
                active: key_active,
                created: Utc::now(),
            }],
            permissions_boundary: None,
            tags: vec![],
        },
    );
    state
}

#[test]
fn parent_changes_take_effect_on_the_next_request() {
    let state = store_user("carol", true);
    let dir = directory(&state);
    let mut c = claims(&dir, SessionKind::Federated, Some(ALICE_ONLY));
    c.parent_name = "carol".into();
    c.parent_id = "AIDASTOREUSER000001".into();
    c.parent_key = Some("AKIASTOREKEY0000001".into());
    let p = principal(&dir, &c).unwrap();
    assert!(allowed(
        &dir,
        &p,
        "s3:GetObject",
        "arn:aws:s3:::uploads/alice/x"
    ));

    // Removed from the group: the same principal is denied by the new snapshot.
    let mut removed = state.clone();
    removed.users.get_mut("carol").unwrap().groups.clear();
    let dir2 = directory(&removed);
    let p2 = principal(&dir2, &c).unwrap();
    assert!(!allowed(
        &dir2,
        &p2,
        "s3:GetObject",
        "arn:aws:s3:::uploads/alice/x"
    ));

    // Key deactivated: the session is refused.
    let dir3 = directory(&store_user("carol", false));
    assert_eq!(
        principal(&dir3, &c).unwrap_err(),
        SessionRefusal::ParentKeyInactive
    );

    // Sessions revoked after issue: refused; a later session is fine.
    let mut revoked = state.clone();
    revoked
        .revoked_before
        .insert("AIDASTOREUSER000001".into(), c.issued_ms + 1);
    let dir4 = directory(&revoked);
    assert_eq!(principal(&dir4, &c).unwrap_err(), SessionRefusal::Revoked);
    let mut later = c.clone();
    later.issued_ms += 2;
    assert!(principal(&dir4, &later).is_ok());

    // Deleted and re-created under the same name: a different user.
    let mut recreated = state.clone();
    recreated.users.get_mut("carol").unwrap().user_id = "AIDASTOREUSER000002".into();
    let dir5 = directory(&recreated);
    assert_eq!(
        principal(&dir5, &c).unwrap_err(),
        SessionRefusal::ParentGone
    );
}

#[test]
fn a_role_session_uses_the_roles_policies_and_its_arn_for_principal_arn() {
    let mut state = StoreState::empty();
    state.roles.insert(
        "reader".into(),
        StoredRole {
            name: "reader".into(),
            path: "/".into(),
            role_id: "AROAREADER000000001".into(),
            created: Utc::now(),
            description: None,
            max_session_duration: 3600,
            trust_policy: r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/issuer"},"Action":"sts:AssumeRole"}]}"#.into(),
            policies: [(
                "read".to_string(),
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                    .to_string(),
            )]
            .into(),
            attached: vec![],
            permissions_boundary: None,
            tags: vec![],
    },
    );
    let dir = directory(&state);
    let mut c = claims(&dir, SessionKind::Role, None);
    c.parent_name = "reader".into();
    c.parent_id = "AROAREADER000000001".into();
    c.parent_key = None;
    c.name = "job-1".into();
    let p = principal(&dir, &c).unwrap();
    assert_eq!(p.kind, PrincipalKind::AssumedRole);
    assert_eq!(p.arn, "arn:aws:sts::000000000000:assumed-role/reader/job-1");
    assert_eq!(p.user_id, "AROAREADER000000001:job-1");
    assert_eq!(p.principal_arn(), "arn:aws:iam::000000000000:role/reader");
    assert!(allowed(&dir, &p, "s3:GetObject", "arn:aws:s3:::any/x"));
    assert!(!allowed(&dir, &p, "s3:PutObject", "arn:aws:s3:::any/x"));
    // With a session policy, the intersection.
    let mut narrowed = c.clone();
    narrowed.policy = Some(ALICE_ONLY.into());
    let p = principal(&dir, &narrowed).unwrap();
    assert!(allowed(
        &dir,
        &p,
        "s3:GetObject",
        "arn:aws:s3:::uploads/alice/x"
    ));
    assert!(!allowed(&dir, &p, "s3:GetObject", "arn:aws:s3:::any/x"));
}

#[test]
fn a_store_entity_named_like_a_config_entity_is_a_conflict() {
    let config = Config::from_toml(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    let base = Directory::from_config(&config).unwrap();
    let mut state = store_user("Issuer", true);
    assert!(matches!(
        base.reconcile(&mut state),
        Err(IdentityError::Conflict(_))
    ));
    let mut state = store_user("carol", true);
    state
        .users
        .get_mut("carol")
        .unwrap()
        .groups
        .push("gone".into());
    let dropped = base.reconcile(&mut state).unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(state.users["carol"].groups, vec!["uploaders".to_string()]);
}

fn stored_user(name: &str, groups: &[&str], key: &str) -> StoredUser {
    StoredUser {
        name: name.into(),
        path: "/".into(),
        user_id: format!("AIDA{}", name.to_ascii_uppercase()),
        created: Utc::now(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        policies: Default::default(),
        attached: vec![],
        access_keys: vec![StoredKey {
            access_key_id: key.into(),
            secret_access_key: format!("secret-of-{name}"),
            active: true,
            created: Utc::now(),
        }],
        permissions_boundary: None,
        tags: vec![],
    }
}

/// What a directory serves, in a comparable form: its store entities, each
/// group's members and the active key ids.
type Served = (StoreState, Vec<(String, Vec<String>)>, Vec<String>);

fn served(dir: &Directory) -> Served {
    let mut members: Vec<(String, Vec<String>)> = dir
        .groups()
        .map(|g| {
            let mut m: Vec<String> = dir
                .members(&g.name)
                .iter()
                .map(|u| u.name.clone())
                .collect();
            m.sort();
            (g.name.clone(), m)
        })
        .collect();
    members.sort();
    let mut keys: Vec<String> = dir
        .users()
        .flat_map(|u| u.keys.clone())
        .filter(|k| dir.access_key(k).is_some())
        .collect();
    keys.sort();
    (dir.store_state(), members, keys)
}

#[test]
fn a_change_applied_to_a_directory_serves_what_a_full_build_serves() {
    let mut state = StoreState::empty();
    state.users.insert(
        "carol".into(),
        stored_user("carol", &["uploaders"], "CAROLKEY0000000001"),
    );
    state.users.insert(
        "dave".into(),
        stored_user("dave", &[], "DAVEKEY00000000001"),
    );
    let before = directory(&state);

    // Carol leaves the group and rotates her key; dave is deleted; erin comes.
    let mut after = state.clone();
    let carol = after.users.get_mut("carol").unwrap();
    carol.groups.clear();
    carol.access_keys[0].access_key_id = "CAROLKEY0000000002".into();
    after.users.remove("dave");
    after.users.insert(
        "erin".into(),
        stored_user("erin", &["uploaders"], "ERINKEY00000000001"),
    );
    after.revoked_before.insert("AIDACAROL".into(), 42);

    let changes = state.diff(&after);
    assert_eq!(changes.len(), 4, "{changes:?}");
    let incremental = before.apply(&changes);
    assert_eq!(served(&incremental), served(&directory(&after)));
    assert!(incremental.access_key("CAROLKEY0000000001").is_none());
    assert!(incremental.access_key("DAVEKEY00000000001").is_none());
    assert_eq!(
        incremental.attachment_count("arn:aws:iam::000000000000:policy/x"),
        0
    );
    assert_eq!(incremental.counts().store_users, 2);
    // The snapshot it came from is untouched.
    assert!(before.access_key("DAVEKEY00000000001").is_some());
}

#[test]
fn a_transaction_yields_only_what_it_changed() {
    let mut state = StoreState::empty();
    state.users.insert(
        "carol".into(),
        stored_user("carol", &[], "CAROLKEY0000000001"),
    );
    let dir = directory(&state);
    let mut tx = tx::Tx::new(&dir);
    // Config users are the config's, not the store's.
    assert!(tx.users.get("issuer").is_none());
    assert_eq!(tx.users.len(), 1);
    tx.users
        .get_mut("carol")
        .unwrap()
        .groups
        .push("uploaders".into());
    // Touched but unchanged: not a change.
    let _ = tx.users.get_mut("carol");
    tx.users.insert(
        "dave".into(),
        stored_user("dave", &[], "DAVEKEY00000000001"),
    );
    assert_eq!(tx.users.len(), 2);
    tx.users.remove("dave");
    assert_eq!(tx.users.len(), 1);
    let changes = tx.finish();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].entity, model::EntityKey::User("carol".into()));
}

#[test]
fn an_unenforceable_policy_from_another_instance_denies_instead_of_widening() {
    let dir = directory(&StoreState::empty());
    let mut user = stored_user("carol", &["uploaders"], "CAROLKEY0000000001");
    // Valid for AWS but not enforceable by s3warden (an unfillable key in
    // an Allow could fail open), as a newer release might have written.
    user.policies.insert(
        "future".into(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/x":"y"}}}]}"#.into(),
    );
    let change = model::Change {
        entity: model::EntityKey::User("carol".into()),
        value: Some(model::Entity::User(user.clone())),
    };
    // Made here, it is refused.
    assert!(
        dir.clone()
            .apply_strict(std::slice::from_ref(&change))
            .is_err()
    );
    // Arriving from the store, it denies everything, group allows included.
    let applied = dir.apply(&[change]);
    let carol = applied.user("carol").unwrap();
    let p = Principal {
        kind: PrincipalKind::User,
        arn: carol.arn.clone(),
        account: applied.account_id.clone(),
        user_name: Some("carol".into()),
        user_id: carol.user_id.clone(),
        access_key_id: Some("CAROLKEY0000000001".into()),
        session: None,
        tags: Arc::default(),
    };
    let ctx = Context::default();
    let req = Request {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::uploads/a",
        context: &ctx,
    };
    assert!(!applied.authorize(&p, &req).allowed);
}

#[test]
fn a_config_declared_provider_is_not_the_stores_and_a_stored_namesake_is_a_conflict() {
    let text = format!(
        "{CONFIG}\n[[oidc_providers]]\nurl = \"https://idp.example.com/a\"\nclient_ids = [\"app\"]\n"
    );
    let config = Config::from_toml(&text, Path::new("t.toml"), Path::new(".")).unwrap();
    let base = Directory::from_config(&config).unwrap();
    let arn = "arn:aws:iam::000000000000:oidc-provider/idp.example.com/a";
    assert_eq!(base.oidc_provider(arn).unwrap().client_ids, ["app"]);
    assert!(base.oidc_provider_from_config(arn));
    assert!(base.stored_oidc_provider(arn).is_none());
    assert!(base.store_state().oidc_providers.is_empty());
    let mut state = StoreState::empty();
    state.oidc_providers.insert(
        arn.to_string(),
        super::model::StoredOidcProvider {
            url: "idp.example.com/a".into(),
            client_ids: vec!["other".into()],
            thumbprints: vec![],
            created: Utc::now(),
            tags: vec![],
        },
    );
    assert!(matches!(
        base.reconcile(&mut state),
        Err(IdentityError::Conflict(_))
    ));
    // A change from elsewhere does not replace or remove it.
    let changed = base.apply(&state.changes());
    assert_eq!(changed.oidc_provider(arn).unwrap().client_ids, ["app"]);
}

#[test]
fn the_directory_knows_whether_any_policy_reads_object_tags() {
    let dir = directory(&StoreState::empty());
    assert_eq!(dir.counts().object_tag_policies, 0);
    let mut user = stored_user("carol", &[], "CAROLKEY0000000001");
    user.policies.insert(
        "tags".into(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"secret"}}}]}"#.into(),
    );
    let put = model::Change {
        entity: model::EntityKey::User("carol".into()),
        value: Some(model::Entity::User(user)),
    };
    let with = dir.apply(std::slice::from_ref(&put));
    assert_eq!(with.counts().object_tag_policies, 1);
    // Replacing the user counts it once; removing it counts it out.
    let again = with.apply(&[put]);
    assert_eq!(again.counts().object_tag_policies, 1);
    let gone = again.apply(&[model::Change {
        entity: model::EntityKey::User("carol".into()),
        value: None,
    }]);
    assert_eq!(gone.counts().object_tag_policies, 0);
}

#[test]
fn a_keys_principal_is_built_once_per_snapshot_and_follows_changes() {
    let mut state = StoreState::empty();
    state.users.insert(
        "carol".into(),
        stored_user("carol", &["uploaders"], "CAROLKEY0000000001"),
    );
    let dir = directory(&state);
    let first = dir.principal_for_key("CAROLKEY0000000001").unwrap();
    let fresh = Principal::for_key(&dir, "CAROLKEY0000000001").unwrap();
    assert_eq!(
        serde_json::to_string(&*first).unwrap(),
        serde_json::to_string(&fresh).unwrap()
    );
    assert!(first.tags.is_empty());
    // The same snapshot shares one principal between requests.
    let again = dir.principal_for_key("CAROLKEY0000000001").unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert!(dir.principal_for_key("NOSUCHKEY000000001").is_none());
    assert!(dir.principal_for_key("ROOTACCESSKEY0001").is_some());

    // Tagged: the next snapshot's principal carries the tags, the old one's not.
    let mut tagged = state.clone();
    tagged.users.get_mut("carol").unwrap().tags = vec![model::Tag {
        key: "team".into(),
        value: "blue".into(),
    }];
    let changed = dir.apply(&state.diff(&tagged));
    let after = changed.principal_for_key("CAROLKEY0000000001").unwrap();
    assert_eq!(after.tags.len(), 1);
    assert!(
        dir.principal_for_key("CAROLKEY0000000001")
            .unwrap()
            .tags
            .is_empty()
    );
    // A copy starts empty too.
    let copy = changed.clone();
    assert!(!Arc::ptr_eq(
        &after,
        &copy.principal_for_key("CAROLKEY0000000001").unwrap()
    ));

    // Key deactivated: no principal.
    let mut inactive = tagged.clone();
    inactive.users.get_mut("carol").unwrap().access_keys[0].active = false;
    let off = changed.apply(&tagged.diff(&inactive));
    assert!(off.principal_for_key("CAROLKEY0000000001").is_none());
}

#[test]
fn a_requests_context_needs_the_keys_its_deciding_policies_read() {
    use crate::policy::{Optional, Reads};
    let dir = directory(&StoreState::empty());
    // The issuer's group policy tests no key and names no variable.
    let user = principal(&dir, &claims(&dir, SessionKind::User, None)).unwrap();
    assert_eq!(dir.decider(&user).context_reads(), Reads::NONE);
    // A federated session adds what its session policy reads.
    let from_network = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::uploads/${aws:username}/*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}"#;
    let fed = claims(&dir, SessionKind::Federated, Some(from_network));
    let reads = dir.decider(&principal(&dir, &fed).unwrap()).context_reads();
    assert!(reads.has(Optional::SourceIp) && reads.has(Optional::Username));
    assert!(!reads.has(Optional::CurrentTime) && !reads.has(Optional::UserAgent));
    // A stored user's own policy and its group's count alike.
    let mut carol = stored_user("carol", &["uploaders"], "CAROLKEY0000000001");
    carol.policies.insert(
        "office-hours".into(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#.into(),
    );
    let with = dir.apply(&[model::Change {
        entity: model::EntityKey::User("carol".into()),
        value: Some(model::Entity::User(carol)),
    }]);
    let carol = with.principal_for_key("CAROLKEY0000000001").unwrap();
    let reads = with.decider(&carol).context_reads();
    assert!(reads.has(Optional::CurrentTime));
    assert!(!reads.has(Optional::SourceIp));
}
