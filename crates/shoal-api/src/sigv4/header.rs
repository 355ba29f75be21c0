//! Parsing the `Authorization` header and its credential scope.
//!
//! `AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/<service>/aws4_request,
//! SignedHeaders=<a;b;c>, Signature=<64 hex>`; components may be separated by `,` with or without
//! spaces and appear in any order. Parsing borrows from the header and never panics.

/// The algorithm this verifier implements.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The components found in an `Authorization` header; `None` when absent or empty.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthorizationParts<'a> {
    pub algorithm: &'a str,
    pub credential: Option<&'a str>,
    pub signed_headers: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Splits an `Authorization` header into its parts; the first occurrence of a component wins and
/// unknown components are ignored.
pub(crate) fn parse_authorization(value: &str) -> AuthorizationParts<'_> {
    let value = value.trim_matches([' ', '\t']);
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let mut parts = AuthorizationParts {
        algorithm,
        ..AuthorizationParts::default()
    };
    for component in rest.split(',') {
        let Some((name, val)) = component.split_once('=') else {
            continue;
        };
        let val = val.trim_matches([' ', '\t']);
        if val.is_empty() {
            continue;
        }
        let slot = match name.trim_matches([' ', '\t']) {
            "Credential" => &mut parts.credential,
            "SignedHeaders" => &mut parts.signed_headers,
            "Signature" => &mut parts.signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(val);
        }
    }
    parts
}

/// `<akid>/<yyyymmdd>/<region>/<service>/<terminator>`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CredentialScope<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
}

/// Splits a `Credential` value into exactly five `/`-separated elements.
pub(crate) fn parse_credential(value: &str) -> Option<CredentialScope<'_>> {
    let mut it = value.split('/');
    let scope = CredentialScope {
        access_key_id: it.next()?,
        date: it.next()?,
        region: it.next()?,
        service: it.next()?,
        terminator: it.next()?,
    };
    it.next().is_none().then_some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_style_header() {
        let p = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abcd",
        );
        assert_eq!(p.algorithm, "AWS4-HMAC-SHA256");
        assert_eq!(
            p.credential,
            Some("AKID/20240101/us-east-1/dynamodb/aws4_request")
        );
        assert_eq!(p.signed_headers, Some("host;x-amz-date"));
        assert_eq!(p.signature, Some("abcd"));
    }

    #[test]
    fn parses_without_spaces_and_in_any_order() {
        let p = parse_authorization("AWS4-HMAC-SHA256 Signature=s,Credential=c,SignedHeaders=h");
        assert_eq!(
            (p.credential, p.signed_headers, p.signature),
            (Some("c"), Some("h"), Some("s"))
        );
    }

    #[test]
    fn missing_and_empty_components_are_none() {
        let p = parse_authorization("foo");
        assert_eq!(p.algorithm, "foo");
        assert_eq!(
            (p.credential, p.signed_headers, p.signature),
            (None, None, None)
        );
        let p = parse_authorization("AWS4-HMAC-SHA256 Credential=, Signature");
        assert_eq!((p.credential, p.signature), (None, None));
    }

    #[test]
    fn credential_needs_exactly_five_elements() {
        let c = parse_credential("AKID/20240101/us-east-1/dynamodb/aws4_request").unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.region, "us-east-1");
        assert!(parse_credential("AKID/20240101/us-east-1/dynamodb").is_none());
        assert!(parse_credential("AKID/20240101/us-east-1/dynamodb/aws4_request/x").is_none());
    }
}
