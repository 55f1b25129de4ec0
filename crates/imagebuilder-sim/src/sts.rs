//! STS `AssumeRole`, as the query protocol has it (`POST /` with a form body,
//! XML answers), so that a target in another account goes through the real
//! SDK's assume-role path. The credentials it hands out sign later requests:
//! the simulator then serves the role's account.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use hyper::Response;

use crate::clock::NANOS_PER_SEC;
use crate::constraints::{role_account, Shape, ARN, EXTERNAL_ID, ROLE_SESSION_NAME};
use crate::serve::{respond, Body};
use crate::timestamp::format_rfc3339_millis;
use crate::SimState;

/// The query protocol's `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn error(state: &SimState, status: u16, code: &str, message: &str) -> Response<Body> {
    let xml = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(message),
        state.request_id()
    );
    respond(status, "text/xml", Bytes::from(xml))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Which roles `sts:AssumeRole` may assume, as the roles' trust policies
/// would say.
#[derive(Debug, Default)]
pub(crate) struct Roles {
    /// Roles allowed by name, with the external ID their trust policy
    /// requires, if any.
    allowed: HashMap<String, Option<String>>,
    /// Every other role too, whatever the external ID: the standalone
    /// simulator's default, so that the README's multi-account examples
    /// run as written.
    any: bool,
    /// Roles always refused, to try a target whose role is denied.
    denied: HashSet<String>,
}

impl Roles {
    pub(crate) fn allow(&mut self, role_arn: &str, external_id: Option<&str>) {
        self.allowed
            .insert(role_arn.into(), external_id.map(str::to_string));
    }

    pub(crate) fn allow_any(&mut self) {
        self.any = true;
    }

    pub(crate) fn deny(&mut self, role_arn: &str) {
        self.denied.insert(role_arn.into());
    }

    pub(crate) fn undeny(&mut self, role_arn: &str) {
        self.denied.remove(role_arn);
    }

    /// True if `role_arn` may be assumed with this external ID.
    pub(crate) fn permit(&self, role_arn: &str, external_id: Option<&str>) -> bool {
        if self.denied.contains(role_arn) {
            return false;
        }
        match self.allowed.get(role_arn) {
            Some(required) => required
                .as_deref()
                .is_none_or(|want| external_id == Some(want)),
            None => self.any,
        }
    }
}

/// Answers a query-protocol request signed for `region` (the Region of its
/// signature, for the call counts).
pub(crate) fn handle(state: &SimState, region: &str, body: &[u8]) -> Response<Body> {
    let params = form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("Action") {
        Some("AssumeRole") => {}
        Some(other) => {
            return error(
                state,
                400,
                "InvalidAction",
                &format!("Could not find operation {other}"),
            )
        }
        None => return error(state, 400, "MissingAction", "Missing Action"),
    }
    // Counted against the account of the role asked for: the account
    // whose builds the session will read.
    let scope = get("RoleArn")
        .and_then(role_account)
        .unwrap_or(crate::scenario::ACCOUNT);
    crate::sync::lock(&state.calls).record("AssumeRole", scope, region);
    // The model's constraints first, in its order of members.
    let checks = [
        ("RoleArn", "roleArn", &ARN, true),
        (
            "RoleSessionName",
            "roleSessionName",
            &ROLE_SESSION_NAME,
            true,
        ),
        ("ExternalId", "externalId", &EXTERNAL_ID, false),
    ];
    for (param, member, shape, required) in checks {
        if let Some(message) = invalid(get(param), member, shape, required) {
            return error(state, 400, "ValidationError", &message);
        }
    }
    let role = get("RoleArn").unwrap_or_default();
    // Any text passes `arnType`; only a role can be assumed.
    let Some(account) = role_account(role) else {
        return error(
            state,
            400,
            "ValidationError",
            &format!(
                "1 validation error detected: Value '{role}' at 'roleArn' is not an IAM role ARN"
            ),
        );
    };
    let session = get("RoleSessionName").unwrap_or_default();
    // An account that left the organisation lost its member roles (see
    // `org.rs`).
    let left = crate::sync::read(&state.org).has_left(account);
    if left || !crate::sync::lock(&state.roles).permit(role, get("ExternalId")) {
        return error(
            state,
            403,
            "AccessDenied",
            &format!("User is not authorized to perform: sts:AssumeRole on resource: {role}"),
        );
    }
    let lifetime = match session_lifetime(state, get("DurationSeconds")) {
        Ok(d) => d,
        Err(message) => return error(state, 400, "ValidationError", &message),
    };
    let account = account.to_string();
    let n = state.request_id().replace('-', "").to_uppercase();
    let access_key = format!("ASIA{}", &n[n.len() - 16..]);
    crate::sync::lock(&state.assumed).insert(access_key.clone(), account.clone());
    let expires = state.clock.now().saturating_add(lifetime);
    crate::sync::lock(&state.expiry).insert(access_key.clone(), expires);
    let expiration = format_rfc3339_millis(expires);
    let role_name = role.rsplit('/').next().unwrap_or_default();
    let xml = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>simulated-secret-{n}</SecretAccessKey>\
<SessionToken>simulated-token-{n}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
<AssumedRoleUser><AssumedRoleId>AROA{}:{session}</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser>\
</AssumeRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleResponse>",
        &n[..16],
        state.request_id()
    );
    respond(200, "text/xml", Bytes::from(xml))
}

/// Why a form parameter breaks its shape, as STS says it; `None` if it
/// does not.
fn invalid(value: Option<&str>, member: &str, shape: &Shape, required: bool) -> Option<String> {
    match value {
        None if required => Some(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        )),
        None => None,
        Some(v) => shape.violation(v).map(|constraint| {
            format!("1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: {constraint}")
        }),
    }
}

/// How long a session lasts, in nanoseconds: the simulator's override if
/// set, else `DurationSeconds` (900 to 43200, as STS accepts), else an hour.
fn session_lifetime(state: &SimState, asked: Option<&str>) -> Result<i64, String> {
    let asked = match asked {
        None => 3600,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (900..=43_200).contains(&n) => n,
            _ => {
                return Err(format!(
                "1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
            ))
            }
        },
    };
    Ok(match *crate::sync::lock(&state.session_lifetime) {
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        None => asked * NANOS_PER_SEC,
    })
}

#[cfg(test)]
mod tests {
    use super::Roles;

    const ROLE: &str = "arn:aws:iam::210987654321:role/exporter";

    #[test]
    fn roles_are_denied_unless_allowed() {
        let mut roles = Roles::default();
        assert!(!roles.permit(ROLE, None));
        roles.allow(ROLE, Some("id-1"));
        assert!(roles.permit(ROLE, Some("id-1")));
        assert!(!roles.permit(ROLE, Some("id-2")), "the external ID counts");
        assert!(!roles.permit(ROLE, None));
    }

    #[test]
    fn any_role_but_the_denied_ones() {
        let mut roles = Roles::default();
        roles.allow_any();
        assert!(roles.permit(ROLE, None));
        assert!(roles.permit(ROLE, Some("whatever")));
        roles.deny(ROLE);
        assert!(!roles.permit(ROLE, None));
        assert!(roles.permit("arn:aws:iam::111111111111:role/x", None));
        roles.undeny(ROLE);
        assert!(roles.permit(ROLE, None));
    }
}
