//! Which condition keys an evaluation consulted: the keys of the conditions
//! it evaluated and of the policy variables it resolved. The audit record
//! names them with their values, so a reviewer sees what a decision rested on
//! (`s3:prefix` was `bob/`, `aws:SourceIp` was `10.0.0.7`).
//!
//! Evaluation is synchronous and stays on one thread, so a thread-local
//! collector, switched on only around the evaluations being traced, records
//! them without threading a recorder through every matching function. Off,
//! it costs one thread-local check per condition.

use std::cell::RefCell;

thread_local! {
    static KEYS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Notes that `key` (lowercased) was consulted, if a trace is running.
pub(crate) fn note(key: &str) {
    KEYS.with(|k| {
        if let Some(keys) = k.borrow_mut().as_mut()
            && !keys.iter().any(|seen| seen == key)
        {
            keys.push(key.to_string());
        }
    });
}

/// Runs `f` and returns what it returned with the condition keys consulted
/// meanwhile (lowercased, in the order first consulted). Traces nest: an
/// outer trace sees the keys of an inner one too.
pub fn traced<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = KEYS.with(|k| k.borrow_mut().replace(Vec::new()));
    let out = f();
    let keys = KEYS.with(|k| {
        let mut slot = k.borrow_mut();
        let keys = slot.take().unwrap_or_default();
        if let Some(mut outer) = outer {
            for key in &keys {
                if !outer.contains(key) {
                    outer.push(key.clone());
                }
            }
            *slot = Some(outer);
        }
        keys
    });
    (out, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Context, NamedPolicy, Policy, PolicyKind, Request, evaluate};

    #[test]
    fn the_keys_a_decision_consulted_are_traced() {
        let policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"List","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
                 "Condition":{"StringLike":{"s3:prefix":"${aws:username}/*"}}},
                {"Sid":"Other","Effect":"Allow","Action":"s3:GetObject","Resource":"*",
                 "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let named = [NamedPolicy {
            name: "p",
            policy: &policy,
        }];
        let mut ctx = Context::new();
        ctx.set("s3:prefix", "alice/x");
        ctx.set("aws:username", "alice");
        ctx.set("aws:SourceIp", "10.1.2.3");
        let req = Request {
            action: "s3:ListBucket",
            resource: "arn:aws:s3:::b",
            context: &ctx,
        };
        let (d, keys) = traced(|| evaluate(&named, None, &req));
        assert!(d.allowed);
        assert!(keys.contains(&"s3:prefix".to_string()), "{keys:?}");
        assert!(keys.contains(&"aws:username".to_string()), "{keys:?}");
        // The GetObject statement never applied: its condition was not consulted.
        assert!(!keys.contains(&"aws:sourceip".to_string()), "{keys:?}");
        // Nothing is collected outside a trace.
        note("x");
        let ((), keys) = traced(|| {});
        assert!(keys.is_empty());
    }
}
