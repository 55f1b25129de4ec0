//! SDK errors turned into the exporter's [`ApiError`]: one line that names
//! the cause and the fix, the full chain at debug level.
//!
//! The SDK's own text is a nested Debug dump (every credential provider
//! tried, a DNS error without its host, a request that could not be built
//! filed as a dispatch failure). What a user needs is which class of
//! problem it is, where (the host, the region, the role), and what to
//! change. A client knows the where ([`ErrorContext`]); the chain tells the
//! class.

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_imagebuilder::config::http::HttpResponse;
use aws_sdk_imagebuilder::error::{
    ConnectorError, DisplayErrorContext, ErrorMetadata, ProvideErrorMetadata, SdkError,
};

use super::environment::{CredentialSource, Endpoint};
use super::{shorten, ApiError, Operation};

/// What a client knows about where it sends its requests, to name the
/// host, the region, the role and the expected credentials in its errors.
/// The default knows nothing: the lines then say "the endpoint".
#[derive(Debug, Clone, Default)]
pub struct ErrorContext {
    pub region: Option<String>,
    /// Where the service is reached.
    pub endpoint: Option<Endpoint>,
    /// Where STS is reached, for a target with a role.
    pub sts: Option<Endpoint>,
    /// The role the target assumes.
    pub role: Option<String>,
    /// Where the (base) credentials are expected to come from.
    pub credentials: Option<CredentialSource>,
}

/// What a call's `send` fails with: the SDK's error, classified with the
/// client's context, or an [`ApiError`] already.
pub trait IntoApiError {
    fn into_api_error(self, op: Operation, ctx: &ErrorContext) -> ApiError;
}

impl IntoApiError for ApiError {
    fn into_api_error(self, _op: Operation, _ctx: &ErrorContext) -> ApiError {
        self
    }
}

impl<E> IntoApiError for SdkError<E, HttpResponse>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    fn into_api_error(self, op: Operation, ctx: &ErrorContext) -> ApiError {
        classify_in(ctx, op, self)
    }
}

/// [`classify_in`] without context.
pub fn classify<E>(op: Operation, err: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    classify_in(&ErrorContext::default(), op, err)
}

/// Maps an SDK error to the exporter's error, keeping the AWS error code,
/// with a message that names the cause and the fix.
pub fn classify_in<E>(ctx: &ErrorContext, op: Operation, err: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    // The whole chain, for whoever needs more than the line.
    tracing::debug!(operation = %op, error = %DisplayErrorContext(&err), "AWS SDK error");
    let message = || shorten(&DisplayErrorContext(&err).to_string(), 300);
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code() {
                Some(code) => ApiError::Service {
                    operation: op,
                    code: code.to_string(),
                    message: shorten(se.err().message().unwrap_or_default(), 300),
                    status,
                },
                // A success status whose body could not be deserialized.
                None if status < 300 => ApiError::Parse {
                    operation: op,
                    message: message(),
                },
                None => ApiError::Service {
                    operation: op,
                    code: format!("HTTP{status}"),
                    message: message(),
                    status,
                },
            }
        }
        SdkError::TimeoutError(_) => ApiError::Timeout { operation: op },
        SdkError::ResponseError(_) => ApiError::Parse {
            operation: op,
            message: message(),
        },
        SdkError::ConstructionFailure(_) => ApiError::Configuration {
            operation: op,
            message: construction(ctx, &chain(&err)),
        },
        SdkError::DispatchFailure(d) => {
            let chain = chain(&err);
            // Identity resolution fails before anything is sent.
            if let Some(c) = chain
                .iter()
                .find_map(|e| e.downcast_ref::<CredentialsError>())
            {
                return credentials(ctx, op, c);
            }
            if d.is_timeout() {
                return ApiError::Timeout { operation: op };
            }
            ApiError::Connection {
                operation: op,
                message: unreachable(ctx, op, &chain),
            }
        }
        _ => ApiError::Connection {
            operation: op,
            message: message(),
        },
    }
}

/// An error and its sources, outermost first.
fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = vec![err];
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push(e);
        cur = e.source();
    }
    out
}

/// The innermost message of a chain: the actual cause.
fn innermost(chain: &[&(dyn Error + 'static)]) -> String {
    let text = chain.last().map(|e| e.to_string()).unwrap_or_default();
    shorten(text.lines().next().unwrap_or_default(), 200)
}

/// Why a connection failed, in words.
fn connection_cause(chain: &[&(dyn Error + 'static)]) -> String {
    let has = |needle: &str| {
        chain
            .iter()
            .any(|e| e.to_string().to_ascii_lowercase().contains(needle))
    };
    let refused = chain.iter().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    let timed_out = chain.iter().any(|e| {
        e.downcast_ref::<ConnectorError>()
            .is_some_and(|c| c.is_timeout())
    });
    if has("dns error") || has("failed to lookup address") {
        format!("the host name does not resolve ({})", innermost(chain))
    } else if refused {
        "connection refused".into()
    } else if timed_out {
        "the connection timed out".into()
    } else if has("certificate") || has("handshake") || has("tls") {
        format!("TLS failed ({})", innermost(chain))
    } else {
        innermost(chain)
    }
}

/// Where a failed request went, and the region: "imagebuilder.us-east-1.amazonaws.com
/// (region us-east-1)", or "the endpoint" without context.
fn place(endpoint: Option<&Endpoint>, region: Option<&str>) -> String {
    let endpoint = endpoint.map_or("the endpoint".to_string(), |e| e.to_string());
    match region {
        Some(r) => format!("{endpoint} (region {r})"),
        None => endpoint,
    }
}

fn is_sqs(op: Operation) -> bool {
    matches!(
        op,
        Operation::ReceiveMessage | Operation::DeleteMessageBatch
    )
}

/// A service endpoint that cannot be reached or resolved.
fn unreachable(ctx: &ErrorContext, op: Operation, chain: &[&(dyn Error + 'static)]) -> String {
    let fix = if is_sqs(op) {
        "check the queue URL and AWS_ENDPOINT_URL_SQS"
    } else if op == Operation::ListAccounts {
        "check AWS_ENDPOINT_URL_ORGANIZATIONS"
    } else {
        "check --aws.region or AWS_ENDPOINT_URL_IMAGEBUILDER"
    };
    format!(
        "cannot reach {}: {}: {fix}",
        place(ctx.endpoint.as_ref(), ctx.region.as_deref()),
        connection_cause(chain)
    )
}

/// A request that could not be built: nothing was sent, and retrying will
/// not help (an empty or malformed region, say).
fn construction(ctx: &ErrorContext, chain: &[&(dyn Error + 'static)]) -> String {
    let cause = innermost(chain);
    if cause.contains("region") {
        let region = ctx.region.as_deref().unwrap_or_default();
        format!("the region {region:?} is not valid ({cause}): check --aws.region, AWS_REGION or the profile's region")
    } else {
        format!("the request could not be built: {cause}")
    }
}

/// Credentials that could not be had: none configured, a role refused, or
/// their source (STS, the instance metadata) out of reach.
fn credentials(ctx: &ErrorContext, op: Operation, err: &CredentialsError) -> ApiError {
    let below = chain(err);
    let text: Vec<String> = below.iter().map(|e| e.to_string()).collect();
    let source = ctx
        .credentials
        .as_ref()
        .map_or("the default chain".to_string(), |s| s.to_string());
    // `code`: the refusal's own code (STS's AccessDenied), the `code`
    // label of the API error counter, when a service refused.
    let lasting = |message: String, code: Option<String>| ApiError::Credentials {
        operation: op,
        message,
        code,
    };
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            lasting(no_credentials(ctx, &text.join("\n")), None)
        }
        CredentialsError::InvalidConfiguration(_) => lasting(
            format!(
                "the AWS configuration is invalid ({}): fix the profile in AWS_CONFIG_FILE or ~/.aws/config",
                innermost(&below)
            ),
            None,
        ),
        CredentialsError::ProviderTimedOut(_) => ApiError::Connection {
            operation: op,
            message: format!("loading credentials from {source} timed out: check the network to it"),
        },
        _ => {
            let answer = below.iter().find_map(|e| {
                e.downcast_ref::<ErrorMetadata>()
                    .and_then(|m| Some((m.code()?.to_string(), m.message().unwrap_or_default().to_string())))
            });
            let connection = below
                .iter()
                .any(|e| e.downcast_ref::<ConnectorError>().is_some());
            match (answer, &ctx.role) {
                (Some((code, _)), _) if passing_sts_code(&code) => ApiError::Connection {
                    operation: op,
                    message: format!(
                        "STS at {} answered {code}: it will be asked again",
                        place(ctx.sts.as_ref(), ctx.region.as_deref())
                    ),
                },
                (Some((code, message)), Some(role)) => lasting(
                    format!(
                        "cannot assume {role}: STS answered {code}: {}: the role's trust policy must allow sts:AssumeRole to {source} (and external_id must match its sts:ExternalId condition, if it has one)",
                        shorten(&message, 200)
                    ),
                    Some(code),
                ),
                (Some((code, message)), None) => lasting(
                    format!(
                        "{source} refused the credentials: {code}: {}",
                        shorten(&message, 200)
                    ),
                    Some(code),
                ),
                (None, Some(role)) if connection => ApiError::Connection {
                    operation: op,
                    message: format!(
                        "cannot reach STS at {} to assume {role}: {}: check AWS_ENDPOINT_URL_STS and the network",
                        place(ctx.sts.as_ref(), ctx.region.as_deref()),
                        connection_cause(&below)
                    ),
                },
                (None, None) if connection => ApiError::Connection {
                    operation: op,
                    message: format!(
                        "cannot load credentials from {source}: {}",
                        connection_cause(&below)
                    ),
                },
                _ => lasting(
                    format!(
                        "cannot load credentials from {source}: {}",
                        innermost(&below)
                    ),
                    None,
                ),
            }
        }
    }
}

/// STS answers that pass: throttling and its own outages.
fn passing_sts_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "IDPCommunicationError"
    )
}

/// "No credentials", with the source that was expected to give them (the
/// default chain's error says why each source had none) and the fix.
fn no_credentials(ctx: &ErrorContext, chain_text: &str) -> String {
    const FIX: &str = "set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run in a role (EKS IRSA or Pod Identity, ECS task role, EC2 instance profile)";
    let reason = |name: &str| {
        chain_text.lines().find_map(|l| {
            let r = l.trim_start().strip_prefix(name)?.strip_prefix(':')?;
            let r = r
                .trim()
                .trim_start_matches("the credential provider was not enabled")
                .trim_start_matches(':')
                .trim();
            Some(r.to_string())
        })
    };
    let with_reason = |what: String, why: Option<String>| match why.filter(|w| !w.is_empty()) {
        Some(w) => format!("{what} ({})", shorten(&w, 200)),
        None => what,
    };
    let expected = match &ctx.credentials {
        Some(CredentialSource::Nothing) => {
            ": nothing is configured, and AWS_EC2_METADATA_DISABLED turns off the instance role"
                .to_string()
        }
        Some(CredentialSource::InstanceRole) => with_reason(
            ": nothing is configured, and the EC2 instance metadata gave none".into(),
            reason("Ec2InstanceMetadata"),
        ),
        Some(s) => match s.chain_name() {
            Some(name) => with_reason(format!(": {s} gave none"), reason(name)),
            None => String::new(),
        },
        None => String::new(),
    };
    let to_assume = ctx
        .role
        .as_ref()
        .map(|r| format!(" to assume {r} with"))
        .unwrap_or_default();
    format!("no AWS credentials{to_assume}{expected}: {FIX}")
}

/// The IAM action of an operation.
pub fn iam_action(op: Operation) -> String {
    match op {
        Operation::ReceiveMessage => "sqs:ReceiveMessage".into(),
        // DeleteMessageBatch is authorized as DeleteMessage.
        Operation::DeleteMessageBatch => "sqs:DeleteMessage".into(),
        Operation::ListAccounts => "organizations:ListAccounts".into(),
        other => format!("imagebuilder:{other}"),
    }
}

/// Codes that mean the credentials themselves were refused (unknown key,
/// bad secret, expired session), not the action.
fn refused_credentials(code: &str) -> bool {
    matches!(
        code,
        "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidAccessKeyId"
            | "AuthFailure"
    )
}

/// Codes of a denied action.
fn denied(code: &str, status: u16) -> bool {
    matches!(
        code,
        "AccessDeniedException" | "AccessDenied" | "ForbiddenException" | "UnauthorizedOperation"
    ) || (status == 403 && !refused_credentials(code))
}

/// The text of a service's error answer, with what to do when it is the
/// configuration's to fix: for a denied action, the action and the
/// principal (AWS names it in its message).
pub fn service_line(op: Operation, code: &str, message: &str, status: u16) -> String {
    if refused_credentials(code) {
        return format!("the credentials were refused ({code}: {message}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, and renew expired session tokens");
    }
    if denied(code, status) {
        let principal = message
            .split_once("User: ")
            .and_then(|(_, rest)| rest.split_once(" is not authorized"))
            .map_or("these credentials".to_string(), |(p, _)| p.to_string());
        return format!(
            "access denied: {principal} may not call {}: allow it in the IAM policy (see docs/deployment.md#iam-policy) ({code}: {message})",
            iam_action(op)
        );
    }
    format!("{code}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_imagebuilder::operation::list_image_build_versions::ListImageBuildVersionsError;

    type Err = SdkError<ListImageBuildVersionsError, HttpResponse>;
    const OP: Operation = Operation::ListImageBuildVersions;
    const ROLE: &str = "arn:aws:iam::210987654321:role/imagebuilder-exporter";

    fn ctx() -> ErrorContext {
        ErrorContext {
            region: Some("us-est-1".into()),
            endpoint: Some(Endpoint {
                address: "imagebuilder.us-est-1.amazonaws.com".into(),
                variable: None,
            }),
            sts: Some(Endpoint {
                address: "http://127.0.0.1:1".into(),
                variable: Some("AWS_ENDPOINT_URL_STS"),
            }),
            role: None,
            credentials: Some(CredentialSource::Profile {
                name: "prod".into(),
                from: "AWS_PROFILE",
            }),
        }
    }

    /// An error with a message and a source, as the HTTP stack nests them.
    #[derive(Debug)]
    struct Nested(&'static str, Option<Box<dyn Error + Send + Sync>>);
    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Nested {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn dispatch(source: impl Error + Send + Sync + 'static, io: bool) -> Err {
        let c = if io {
            ConnectorError::io(Box::new(source))
        } else {
            ConnectorError::other(Box::new(source), None)
        };
        SdkError::dispatch_failure(c)
    }

    fn service(code: &str, message: &str, status: u16) -> Err {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        SdkError::service_error(ListImageBuildVersionsError::generic(meta), raw)
    }

    /// The default chain's "no credentials", as it nests it.
    fn not_loaded() -> CredentialsError {
        CredentialsError::not_loaded(Nested(
            "no credentials found in chain. Attempted:\n  Environment: the credential provider was not enabled: environment variable not set\n  Profile: the credential provider was not enabled: profile `prod` was not defined\n  Ec2InstanceMetadata: the credential provider was not enabled: IMDS disabled",
            None,
        ))
    }

    #[test]
    fn no_credentials_names_the_expected_source_and_the_fix() {
        let e = classify_in(&ctx(), OP, dispatch(not_loaded(), false));
        assert_eq!(e.code(), "credentials");
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "ListImageBuildVersions: no AWS credentials: profile prod (AWS_PROFILE) gave none (profile `prod` was not defined): set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run in a role (EKS IRSA or Pod Identity, ECS task role, EC2 instance profile)"
        );
        // Nothing configured: no provider is blamed, the fix is the same.
        let nothing = ErrorContext {
            credentials: Some(CredentialSource::Nothing),
            ..ctx()
        };
        let e = classify_in(&nothing, OP, dispatch(not_loaded(), false)).to_string();
        assert!(
            e.contains("no AWS credentials: nothing is configured"),
            "{e}"
        );
        assert!(!e.contains("Attempted"), "one line, not the chain: {e}");
    }

    #[test]
    fn an_unresolvable_or_refused_endpoint_names_the_host_the_region_and_the_fix() {
        let dns = Nested(
            "client error (Connect)",
            Some(Box::new(Nested(
                "dns error",
                Some(Box::new(std::io::Error::other(
                    "failed to lookup address information: Name or service not known",
                ))),
            ))),
        );
        let e = classify_in(&ctx(), OP, dispatch(dns, true));
        assert_eq!(e.code(), "connection");
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "ListImageBuildVersions: cannot reach imagebuilder.us-est-1.amazonaws.com (region us-est-1): the host name does not resolve (failed to lookup address information: Name or service not known): check --aws.region or AWS_ENDPOINT_URL_IMAGEBUILDER"
        );
        let refused = Nested(
            "tcp connect error",
            Some(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        );
        let e = classify_in(&ErrorContext::default(), OP, dispatch(refused, true)).to_string();
        assert_eq!(e, "ListImageBuildVersions: cannot reach the endpoint: connection refused: check --aws.region or AWS_ENDPOINT_URL_IMAGEBUILDER");
    }

    #[test]
    fn a_request_that_cannot_be_built_is_a_configuration_error() {
        let err: Err = SdkError::construction_failure(Nested(
            "endpoint params could not be built",
            Some(Box::new(Nested(
                "invalid value for field: `region` - must be a valid host label",
                None,
            ))),
        ));
        let e = classify_in(
            &ErrorContext {
                region: Some(String::new()),
                ..ErrorContext::default()
            },
            OP,
            err,
        );
        assert_eq!(e.code(), "configuration");
        assert!(!e.is_retryable());
        assert!(
            e.to_string().contains("the region \"\" is not valid")
                && e.to_string().contains("check --aws.region, AWS_REGION"),
            "{e}"
        );
    }

    #[test]
    fn a_denied_action_names_the_action_and_the_principal() {
        let e = classify_in(
            &ctx(),
            OP,
            service(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/exporter/i-0abc is not authorized to perform: imagebuilder:ListImageBuildVersions on resource: *",
                403,
            ),
        );
        assert_eq!(e.code(), "AccessDeniedException");
        assert!(!e.is_retryable());
        let line = e.to_string();
        assert!(
            line.starts_with("ListImageBuildVersions failed: access denied: arn:aws:sts::123456789012:assumed-role/exporter/i-0abc may not call imagebuilder:ListImageBuildVersions: allow it in the IAM policy"),
            "{line}"
        );
        let e = classify_in(
            &ctx(),
            OP,
            service(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                403,
            ),
        );
        assert!(
            e.to_string().contains("the credentials were refused"),
            "{e}"
        );
        // Throttling stays what it was.
        let e = classify_in(
            &ctx(),
            OP,
            service("CallRateLimitExceededException", "Rate exceeded", 429),
        );
        assert!(e.is_throttle());
        assert_eq!(
            e.to_string(),
            "ListImageBuildVersions failed: CallRateLimitExceededException: Rate exceeded"
        );
    }

    #[test]
    fn a_refused_or_unreachable_role() {
        let with_role = ErrorContext {
            role: Some(ROLE.into()),
            credentials: Some(CredentialSource::Environment),
            ..ctx()
        };
        let denied = CredentialsError::provider_error(Nested(
            "service error",
            Some(Box::new(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message(format!(
                        "User is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
                    ))
                    .build(),
            )),
        ));
        let e = classify_in(&with_role, OP, dispatch(denied, false));
        // Counted by STS's own code, the reason on the dashboard.
        assert_eq!(e.code(), "AccessDenied");
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            format!("ListImageBuildVersions: cannot assume {ROLE}: STS answered AccessDenied: User is not authorized to perform: sts:AssumeRole on resource: {ROLE}: the role's trust policy must allow sts:AssumeRole to the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) (and external_id must match its sts:ExternalId condition, if it has one)")
        );
        let down = CredentialsError::provider_error(ConnectorError::io(Box::new(Nested(
            "tcp connect error",
            Some(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        ))));
        let e = classify_in(&with_role, OP, dispatch(down, false));
        assert_eq!(e.code(), "connection", "passing: {e}");
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            format!("ListImageBuildVersions: cannot reach STS at http://127.0.0.1:1 (AWS_ENDPOINT_URL_STS) (region us-est-1) to assume {ROLE}: connection refused: check AWS_ENDPOINT_URL_STS and the network")
        );
    }
}
