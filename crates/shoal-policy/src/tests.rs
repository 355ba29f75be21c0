use proptest::prelude::*;

use crate::*;

const ACCOUNT: &str = "000000000000";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/T";
const OTHER: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/Other";

fn me() -> Principal {
    Principal::access_key("AKIAME", ACCOUNT)
}

fn identity(text: &str) -> Policy {
    match Policy::parse(text, PolicyKind::Identity) {
        Ok(p) => p,
        Err(e) => panic!("policy refused: {e}"),
    }
}

fn resource(text: &str) -> Policy {
    match Policy::parse(text, PolicyKind::Resource) {
        Ok(p) => p,
        Err(e) => panic!("policy refused: {e}"),
    }
}

fn check(policy: &Policy, action: &str, res: &str, context: &Context) -> Verdict {
    let p = me();
    authorize(
        Identity::Policy(policy),
        None,
        &Request {
            principal: &p,
            action,
            resource: res,
            context,
        },
    )
}

fn allow(statement_body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",{statement_body}}}]}}"#)
}

#[test]
fn allow_and_implicit_deny() {
    let p = identity(&allow(
        r#""Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:*:*:table/T""#,
    ));
    let c = Context::new();
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    assert_eq!(
        check(&p, "dynamodb:PutItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        check(&p, "dynamodb:GetItem", OTHER, &c),
        Verdict::ImplicitDeny
    );
    // Action names are case-insensitive, resources are not.
    assert_eq!(check(&p, "DynamoDB:getitem", TABLE, &c), Verdict::Allowed);
    assert_eq!(
        check(
            &p,
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:000000000000:table/t",
            &c
        ),
        Verdict::ImplicitDeny
    );
}

#[test]
fn statement_may_be_an_object_and_lists_may_be_strings() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#,
    );
    assert_eq!(
        check(&p, "dynamodb:DeleteTable", TABLE, &Context::new()),
        Verdict::Allowed
    );
    assert_eq!(
        check(&p, "shoal:RemoveNode", "*", &Context::new()),
        Verdict::ImplicitDeny
    );
}

#[test]
fn explicit_deny_wins() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
            {"Sid":"NoDelete","Effect":"Deny","Action":"dynamodb:Delete*","Resource":"*"}]}"#,
    );
    let c = Context::new();
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    assert_eq!(
        check(&p, "dynamodb:DeleteItem", TABLE, &c),
        Verdict::ExplicitDeny {
            in_resource_policy: false
        }
    );
    let principal = me();
    assert_eq!(
        p.decide(&Request {
            principal: &principal,
            action: "dynamodb:DeleteTable",
            resource: TABLE,
            context: &c
        }),
        Decision::Deny {
            sid: Some("NoDelete".into())
        }
    );
}

#[test]
fn not_action_and_not_resource() {
    let p = identity(&allow(
        r#""NotAction":["dynamodb:Delete*","dynamodb:Update*"],"NotResource":"arn:aws:dynamodb:*:*:table/Secret*""#,
    ));
    let c = Context::new();
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    assert_eq!(
        check(&p, "dynamodb:DeleteItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        check(
            &p,
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:000000000000:table/Secrets",
            &c
        ),
        Verdict::ImplicitDeny
    );
}

#[test]
fn index_arns_need_their_own_resource() {
    let p = identity(&allow(
        r#""Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:*:*:table/T""#,
    ));
    let idx = "arn:aws:dynamodb:us-east-1:000000000000:table/T/index/ByDate";
    assert_eq!(
        check(&p, "dynamodb:Query", idx, &Context::new()),
        Verdict::ImplicitDeny
    );
    let p = identity(&allow(
        r#""Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:*:*:table/T/index/*""#,
    ));
    assert_eq!(
        check(&p, "dynamodb:Query", idx, &Context::new()),
        Verdict::Allowed
    );
}

#[test]
fn leading_keys_for_all_values() {
    let p = identity(&allow(
        r#""Action":["dynamodb:GetItem","dynamodb:BatchGetItem"],"Resource":"*",
           "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${aws:username}"]}}"#,
    ));
    let mut c = Context::new();
    c.set_all("dynamodb:LeadingKeys", vec!["AKIAME".into()]);
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    c.set_all(
        "dynamodb:LeadingKeys",
        vec!["AKIAME".into(), "AKIAYOU".into()],
    );
    assert_eq!(
        check(&p, "dynamodb:BatchGetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    c.set_all("dynamodb:LeadingKeys", vec!["AKIAYOU".into()]);
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    // As in IAM, ForAllValues over an absent key holds.
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &Context::new()),
        Verdict::Allowed
    );
}

#[test]
fn multivalued_keys_need_a_qualifier() {
    let e = Policy::parse(
        &allow(
            r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"dynamodb:LeadingKeys":"a"}}"#,
        ),
        PolicyKind::Identity,
    );
    assert!(matches!(e, Err(PolicyError::Invalid(m)) if m.contains("ForAllValues")));
}

#[test]
fn for_any_value_and_negations() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"dynamodb:EnclosingOperation":["TransactWriteItems","TransactGetItems"]}}"#,
    ));
    let mut c = Context::new();
    assert_eq!(
        check(&p, "dynamodb:PutItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    c.set("dynamodb:EnclosingOperation", "TransactGetItems");
    assert_eq!(check(&p, "dynamodb:PutItem", TABLE, &c), Verdict::Allowed);

    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"ForAllValues:StringNotLike":{"dynamodb:Attributes":["secret*"]}}"#,
    ));
    let mut c = Context::new();
    c.set_all("dynamodb:Attributes", vec!["a".into(), "b".into()]);
    assert_eq!(
        check(&p, "dynamodb:UpdateItem", TABLE, &c),
        Verdict::Allowed
    );
    c.set_all("dynamodb:Attributes", vec!["a".into(), "secretB".into()]);
    assert_eq!(
        check(&p, "dynamodb:UpdateItem", TABLE, &c),
        Verdict::ImplicitDeny
    );

    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"ForAnyValue:StringNotEquals":{"dynamodb:Attributes":["a"]}}"#,
    ));
    c.set_all("dynamodb:Attributes", vec!["a".into()]);
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    c.set_all("dynamodb:Attributes", vec!["a".into(), "b".into()]);
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
}

#[test]
fn single_valued_operators_and_if_exists() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"dynamodb:Select":"SPECIFIC_ATTRIBUTES","dynamodb:ReturnValues":["NONE","UPDATED_OLD"]}}"#,
    ));
    let mut c = Context::new();
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    c.set("dynamodb:Select", "ALL_ATTRIBUTES");
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    c.set("dynamodb:Select", "SPECIFIC_ATTRIBUTES");
    c.set("dynamodb:ReturnValues", "UPDATED_OLD");
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);

    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"StringNotEquals":{"dynamodb:Select":"ALL_ATTRIBUTES"}}"#,
    ));
    // A negated operator over an absent key holds.
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &Context::new()),
        Verdict::Allowed
    );
    let mut c = Context::new();
    c.set("dynamodb:Select", "ALL_ATTRIBUTES");
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );

    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"dynamodb:Select":"count"}}"#,
    ));
    c.set("dynamodb:Select", "COUNT");
    assert_eq!(check(&p, "dynamodb:Scan", TABLE, &c), Verdict::Allowed);
}

#[test]
fn source_ip() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]}}"#,
    ));
    let mut c = Context::new();
    c.set("aws:SourceIp", "10.1.2.3");
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    c.set("aws:SourceIp", "::1");
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    c.set("aws:SourceIp", "192.0.2.1");
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    let deny = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#,
    );
    c.set("aws:SourceIp", "127.0.0.1");
    assert_eq!(
        check(&deny, "dynamodb:GetItem", TABLE, &c),
        Verdict::Allowed
    );
    c.set("aws:SourceIp", "192.0.2.1");
    assert!(matches!(
        check(&deny, "dynamodb:GetItem", TABLE, &c),
        Verdict::ExplicitDeny { .. }
    ));
    assert!(
        Policy::parse(
            &allow(
                r#""Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"nope"}}"#
            ),
            PolicyKind::Identity
        )
        .is_err()
    );
}

#[test]
fn resource_tags_bool_and_null() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"blue"}}"#,
    ));
    let mut c = Context::new();
    assert_eq!(
        check(&p, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    c.set("aws:ResourceTag/team", "blue");
    assert_eq!(check(&p, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    let null = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"Null":{"aws:ResourceTag/owner":"true"}}"#,
    ));
    assert_eq!(
        check(&null, "dynamodb:GetItem", TABLE, &c),
        Verdict::Allowed
    );
    c.set("aws:ResourceTag/owner", "x");
    assert_eq!(
        check(&null, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
    let b = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"Bool":{"aws:ResourceTag/public":true}}"#,
    ));
    c.set("aws:ResourceTag/public", "TRUE");
    assert_eq!(check(&b, "dynamodb:GetItem", TABLE, &c), Verdict::Allowed);
    c.set("aws:ResourceTag/public", "no");
    assert_eq!(
        check(&b, "dynamodb:GetItem", TABLE, &c),
        Verdict::ImplicitDeny
    );
}

#[test]
fn variables_in_resources() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"arn:aws:dynamodb:*:*:table/home-${aws:username}""#,
    ));
    let mine = "arn:aws:dynamodb:us-east-1:000000000000:table/home-AKIAME";
    assert_eq!(
        check(&p, "dynamodb:PutItem", mine, &Context::new()),
        Verdict::Allowed
    );
    assert_eq!(
        check(&p, "dynamodb:PutItem", TABLE, &Context::new()),
        Verdict::ImplicitDeny
    );
    // 2008-10-17: variables are literal text.
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:dynamodb:*:*:table/home-${aws:username}"}]}"#,
    );
    assert_eq!(
        check(&old, "dynamodb:PutItem", mine, &Context::new()),
        Verdict::ImplicitDeny
    );
}

#[test]
fn resource_policies_combine_with_identity() {
    let principal = me();
    let c = Context::new();
    let req = |action: &'static str| Request {
        principal: &principal,
        action,
        resource: TABLE,
        context: &c,
    };
    let nothing = identity(&allow(r#""Action":"dynamodb:ListTables","Resource":"*""#));
    let grant = resource(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/AKIAME"},"Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:us-east-1:000000000000:table/T"}]}"#,
    );
    assert_eq!(
        authorize(
            Identity::Policy(&nothing),
            Some(&grant),
            &req("dynamodb:GetItem")
        ),
        Verdict::Allowed
    );
    assert_eq!(
        authorize(
            Identity::Policy(&nothing),
            Some(&grant),
            &req("dynamodb:PutItem")
        ),
        Verdict::ImplicitDeny
    );
    // Naming the account in an Allow delegates to the identity's policy: no grant by itself.
    let account = resource(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"*","Resource":"*"}]}"#,
    );
    assert_eq!(
        authorize(
            Identity::Policy(&nothing),
            Some(&account),
            &req("dynamodb:GetItem")
        ),
        Verdict::ImplicitDeny
    );
    // A deny in the resource policy applies even to a key without a policy.
    let deny = resource(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"dynamodb:DeleteItem","Resource":"*"}]}"#,
    );
    assert_eq!(
        authorize(
            Identity::FullAccess,
            Some(&deny),
            &req("dynamodb:DeleteItem")
        ),
        Verdict::ExplicitDeny {
            in_resource_policy: true
        }
    );
    assert_eq!(
        authorize(Identity::FullAccess, Some(&deny), &req("dynamodb:GetItem")),
        Verdict::Allowed
    );
    let deny_account = resource(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"*","Resource":"*"}]}"#,
    );
    assert!(matches!(
        authorize(
            Identity::FullAccess,
            Some(&deny_account),
            &req("dynamodb:GetItem")
        ),
        Verdict::ExplicitDeny { .. }
    ));
    let someone_else = resource(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::000000000000:user/AKIAYOU"]},"Action":"*","Resource":"*"}]}"#,
    );
    assert_eq!(
        authorize(
            Identity::FullAccess,
            Some(&someone_else),
            &req("dynamodb:GetItem")
        ),
        Verdict::Allowed
    );
}

#[test]
fn messages_have_dynamodb_form() {
    let principal = me();
    let c = Context::new();
    let req = Request {
        principal: &principal,
        action: "dynamodb:PutItem",
        resource: TABLE,
        context: &c,
    };
    assert_eq!(
        Verdict::ImplicitDeny.message(&req).as_deref(),
        Some(
            "User: arn:aws:iam::000000000000:user/AKIAME is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T because no identity-based policy allows the dynamodb:PutItem action"
        )
    );
    assert_eq!(
        Verdict::ExplicitDeny {
            in_resource_policy: false
        }
        .message(&req)
        .as_deref(),
        Some(
            "User: arn:aws:iam::000000000000:user/AKIAME is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T with an explicit deny in an identity-based policy"
        )
    );
    assert_eq!(Verdict::Allowed.message(&req), None);
}

#[test]
fn invalid_documents_are_refused_with_reasons() {
    let refused = |text: &str, kind| match Policy::parse(text, kind) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    };
    let id = PolicyKind::Identity;
    assert!(refused("not json", id).contains("not valid JSON"));
    assert!(refused("[]", id).contains("JSON object"));
    assert!(refused(r#"{"Version":"2012-10-17"}"#, id).contains("no Statement"));
    assert!(refused(r#"{"Version":"2020-01-01","Statement":[]}"#, id).contains("Version"));
    assert!(refused(r#"{"Statement":[]}"#, id).contains("empty"));
    assert!(refused(&allow(r#""Action":"*""#), id).contains("Resource or NotResource"));
    assert!(refused(&allow(r#""Resource":"*""#), id).contains("Action or NotAction"));
    assert!(refused(&allow(r#""Action":"*","NotAction":"*","Resource":"*""#), id).contains("both"));
    assert!(refused(&allow(r#""Action":"GetItem","Resource":"*""#), id).contains("service:Action"));
    assert!(refused(&allow(r#""Action":"*","Resource":"table/T""#), id).contains("ARN"));
    assert!(
        refused(&allow(r#""Action":"*","Resource":"*","Principal":"*""#), id).contains("Principal")
    );
    assert!(refused(&allow(r#""Action":"*","Resource":"*","Extra":1"#), id).contains("Extra"));
    assert!(
        refused(
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
            id
        )
        .contains("Effect")
    );
    assert!(refused(&allow(r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:CurrentTime":"x"}}"#), id).contains("aws:CurrentTime"));
    assert!(refused(&allow(r#""Action":"*","Resource":"*","Condition":{"NumericLessThan":{"dynamodb:Select":"1"}}"#), id).contains("NumericLessThan"));
    assert!(refused(&allow(r#""Action":"*","Resource":"*","Condition":{"StringSortOf":{"dynamodb:Select":"1"}}"#), id).contains("unknown condition operator"));
    assert!(
        refused(
            &allow(
                r#""Action":"*","Resource":"*","Condition":{"Null":{"dynamodb:Select":"maybe"}}"#
            ),
            id
        )
        .contains("true or false")
    );
    let rp = PolicyKind::Resource;
    assert!(
        refused(&allow(r#""Action":"*","Resource":"*""#), rp).contains("must name a Principal")
    );
    assert!(
        refused(
            &allow(r#""Action":"*","Resource":"*","Principal":{"Service":"x"}"#),
            rp
        )
        .contains("Service")
    );
    assert!(
        refused(
            &allow(r#""Action":"*","Resource":"*","NotPrincipal":"*""#),
            rp
        )
        .contains("NotPrincipal")
    );
    assert!(
        refused(
            &allow(r#""Action":"*","Resource":"*","Principal":{"AWS":"arn:aws:iam::1:user/*"}"#),
            rp
        )
        .contains("principal")
    );
}

#[test]
fn size_limits() {
    // Whitespace does not count against an identity policy's limit.
    let padded = format!(
        "{}{}",
        " ".repeat(10_000),
        allow(r#""Action":"*","Resource":"*""#)
    );
    assert!(Policy::parse(&padded, PolicyKind::Identity).is_ok());
    let big = allow(&format!(
        r#""Action":"*","Resource":"arn:aws:dynamodb:*:*:table/{}""#,
        "a".repeat(IDENTITY_POLICY_MAX_CHARS)
    ));
    assert!(matches!(
        Policy::parse(&big, PolicyKind::Identity),
        Err(PolicyError::TooLarge { .. })
    ));
    // A resource policy counts whitespace.
    let padded = format!(
        "{}{}",
        " ".repeat(RESOURCE_POLICY_MAX_BYTES),
        allow(r#""Principal":"*","Action":"*","Resource":"*""#)
    );
    assert!(matches!(
        Policy::parse(&padded, PolicyKind::Resource),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn uses_key() {
    let p = identity(&allow(
        r#""Action":"*","Resource":"*","Condition":{"ForAllValues:StringLike":{"dynamodb:Attributes":"a*"},"StringEquals":{"aws:ResourceTag/Team":"x"}}"#,
    ));
    assert!(p.uses_key("dynamodb:attributes"));
    assert!(!p.uses_key("dynamodb:leadingkeys"));
    assert!(p.uses_key(RESOURCE_TAG_PREFIX));
}

proptest! {
    /// Never panics, whatever the input; anything accepted evaluates.
    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = Policy::parse(&text, PolicyKind::Identity);
        let _ = Policy::parse(&text, PolicyKind::Resource);
    }

    /// Adding a deny statement that matches everything never leaves a request allowed, and a
    /// policy with only allow statements never answers with an explicit deny.
    #[test]
    fn deny_wins_over_any_allow(action in "dynamodb:[A-Z][a-zA-Z]{0,12}", table in "[A-Za-z0-9_.-]{1,20}") {
        let res = format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}");
        let allow_only = identity(&allow(r#""Action":"*","Resource":"*""#));
        let c = Context::new();
        prop_assert_eq!(check(&allow_only, &action, &res, &c), Verdict::Allowed);
        let with_deny = identity(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/*"}]}"#);
        prop_assert_eq!(check(&with_deny, &action, &res, &c), Verdict::ExplicitDeny { in_resource_policy: false });
    }

    /// ForAllValues:StringEquals over LeadingKeys allows exactly when every key is permitted.
    #[test]
    fn leading_keys_model(keys in proptest::collection::vec("[abc]", 1..6)) {
        let p = identity(&allow(
            r#""Action":"*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["a","b"]}}"#,
        ));
        let mut c = Context::new();
        c.set_all("dynamodb:LeadingKeys", keys.clone());
        let expected = keys.iter().all(|k| k == "a" || k == "b");
        prop_assert_eq!(check(&p, "dynamodb:Query", TABLE, &c) == Verdict::Allowed, expected);
    }
}
