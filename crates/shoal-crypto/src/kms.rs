//! AWS KMS as a source of master keys: [`KmsClient`] (the KMS JSON API over HTTP(S), SigV4-signed) and
//! [`KmsKeyProvider`] (a [`KeyProvider`] whose master key is one KMS key).
//!
//! # Wire protocol
//! Every call is `POST /` to the configured endpoint with `Content-Type: application/x-amz-json-1.1`,
//! `X-Amz-Target: TrentService.<Operation>` and a JSON body, signed with AWS Signature Version 4 for the
//! service `kms` (the official `aws-sigv4` signer). Errors come back as a non-200 status with
//! `{"__type": "...#NotFoundException", "message": "..."}` and become [`CryptoError::Kms`] carrying KMS's
//! error type and message; unreachable endpoints, timeouts (connect 5 s, whole request 10 s) and non-KMS
//! answers become [`CryptoError::KmsTransport`] naming the endpoint.
//!
//! # Wrapping
//! A data key is wrapped with KMS `Encrypt` (the 32 key bytes as `Plaintext`) and unwrapped with KMS
//! `Decrypt`. The wrapping context (for a table key, [`crate::table_context`]) is bound as the KMS
//! *encryption context* `{"shoal-context": base64(context)}`, so a wrapped key moved to another table fails
//! to decrypt (`InvalidCiphertextException`). The [`WrappedKey`] records [`WrapAlgorithm::KmsEncrypt`] and the
//! KMS key's ARN, and `Decrypt` passes that ARN as `KeyId`, so KMS refuses a ciphertext that was made by
//! another key. Key material never leaves KMS; the plaintext data key crosses the connection (use an
//! `https://` endpoint outside tests).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::{Zeroize, Zeroizing};

use crate::provider::{MasterKeyInfo, MasterKeyState, now_unix};
use crate::{CryptoError, DataKey, KEY_LEN, KeyId, KeyProvider, WrapAlgorithm, WrappedKey};

/// Content type of KMS JSON requests.
pub const KMS_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The encryption-context entry that carries Shoal's wrapping context (base64).
pub const KMS_CONTEXT_KEY: &str = "shoal-context";
/// TCP connect timeout of KMS requests.
pub const KMS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one whole KMS request (connect, send, receive).
pub const KMS_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const TARGET_PREFIX: &str = "TrentService.";
const SERVICE: &str = "kms";

/// AWS credentials used to sign KMS requests. The secret is zeroised on drop and never printed.
#[derive(Clone)]
pub struct KmsCredentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl KmsCredentials {
    /// Credentials from explicit values.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> KmsCredentials {
        KmsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            session_token: session_token.map(Zeroizing::new),
        }
    }

    /// Credentials from the standard environment variables `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// (optional) `AWS_SESSION_TOKEN`.
    ///
    /// # Errors
    /// [`CryptoError::Provider`] if the key id or the secret is missing or empty.
    pub fn from_env() -> Result<KmsCredentials, CryptoError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(CryptoError::Provider {
                provider: "kms".into(),
                message: "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)".into(),
            });
        };
        Ok(KmsCredentials::new(id, secret, var("AWS_SESSION_TOKEN")))
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl fmt::Debug for KmsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where and how to reach KMS.
#[derive(Clone, Debug)]
pub struct KmsConfig {
    /// The endpoint URL, `https://kms.<region>.amazonaws.com` or a KMS-compatible server such as
    /// `http://127.0.0.1:5000`. Path must be empty or `/`.
    pub endpoint: String,
    /// The region in the SigV4 credential scope.
    pub region: String,
    /// The KMS key (id, ARN, alias name or alias ARN) used as the node's master key when the node's key
    /// provider is KMS; also the default key of tables created with `SSESpecification.Enabled` and no
    /// `KMSMasterKeyId` when the KMS has no `alias/aws/dynamodb`. `None` when KMS is only used for tables
    /// that name their own key.
    pub key_id: Option<String>,
    /// Signing credentials.
    pub credentials: KmsCredentials,
}

/// Metadata of a KMS key, from `DescribeKey`.
#[derive(Clone, Debug, PartialEq)]
pub struct KmsKeyInfo {
    /// The key ARN.
    pub arn: String,
    /// The key id (UUID).
    pub key_id: String,
    /// Whether the key is enabled.
    pub enabled: bool,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub key_state: String,
    /// `ENCRYPT_DECRYPT`, `SIGN_VERIFY`, ...
    pub key_usage: String,
    /// `SYMMETRIC_DEFAULT`, `RSA_2048`, ... (empty if KMS did not say).
    pub key_spec: String,
    /// Creation time, seconds since the Unix epoch (0 if unknown).
    pub created_at: u64,
}

impl KmsKeyInfo {
    /// Whether Shoal can wrap data keys with this key: enabled, symmetric, for encryption.
    pub fn usable_for_wrapping(&self) -> bool {
        self.enabled
            // Some KMS-compatible servers leave KeyUsage out for the default (ENCRYPT_DECRYPT).
            && (self.key_usage.is_empty() || self.key_usage == "ENCRYPT_DECRYPT")
            && (self.key_spec.is_empty() || self.key_spec == "SYMMETRIC_DEFAULT")
    }
}

/// A blocking client of the KMS JSON API (one connection pool, shared; thread-safe).
pub struct KmsClient {
    endpoint: String,
    url: String,
    host: String,
    region: String,
    credentials: KmsCredentials,
    agent: ureq::Agent,
}

impl fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClient")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.credentials.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KmsErrorBody {
    #[serde(rename = "__type", default)]
    error_type: String,
    #[serde(default, alias = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct CiphertextResponse {
    #[serde(rename = "CiphertextBlob")]
    ciphertext: String,
    #[serde(rename = "KeyId", default)]
    key_id: String,
}

#[derive(Deserialize)]
struct PlaintextResponse {
    #[serde(rename = "Plaintext")]
    plaintext: String,
    #[serde(rename = "CiphertextBlob", default)]
    ciphertext: String,
    #[serde(rename = "KeyId", default)]
    key_id: String,
}

impl KmsClient {
    /// A client for `config.endpoint` (no request is made; `config.key_id` is not used here).
    ///
    /// # Errors
    /// [`CryptoError::Provider`] for an endpoint that is not an `http://` or `https://` URL without a path,
    /// or an empty region.
    pub fn new(config: &KmsConfig) -> Result<KmsClient, CryptoError> {
        let bad = |why: String| CryptoError::Provider {
            provider: "kms".into(),
            message: format!("invalid KMS endpoint {:?}: {why}", config.endpoint),
        };
        let uri: http::Uri = config
            .endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        if scheme != "http" && scheme != "https" {
            return Err(bad("must start with http:// or https://".into()));
        }
        let Some(authority) = uri.authority() else {
            return Err(bad("has no host".into()));
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("must not have a path or query".into()));
        }
        if config.region.trim().is_empty() {
            return Err(CryptoError::Provider {
                provider: "kms".into(),
                message: "the KMS region is empty (--kms-region / SHOAL_KMS_REGION)".into(),
            });
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(KMS_CONNECT_TIMEOUT))
            .timeout_global(Some(KMS_REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(KmsClient {
            endpoint: config.endpoint.clone(),
            url: format!("{scheme}://{authority}/"),
            host: authority.as_str().to_string(),
            region: config.region.clone(),
            credentials: config.credentials.clone(),
            agent,
        })
    }

    /// The endpoint URL as configured.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, maybe `x-amz-security-token`) for a request.
    fn signed_headers(
        &self,
        operation: &'static str,
        target: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, CryptoError> {
        let fail = |what: &str| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason: format!("cannot sign the request: {what}"),
        };
        let identity: Identity = Credentials::new(
            self.credentials.access_key_id.clone(),
            self.credentials.secret_access_key.as_str(),
            self.credentials
                .session_token
                .as_ref()
                .map(|t| t.as_str().to_string()),
            None,
            "shoal-kms",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(&e.to_string()))?
            .into();
        let headers = [
            ("content-type", KMS_CONTENT_TYPE),
            ("host", self.host.as_str()),
            ("x-amz-target", target),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail(&e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| fail(&e.to_string()))?
            .into_parts();
        let (added, _) = instructions.into_parts();
        Ok(added
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect())
    }

    /// Sends one request and returns the body of a 200 answer. The returned text is zeroised on drop (it
    /// may hold a plaintext data key).
    fn send(
        &self,
        operation: &'static str,
        key: &str,
        body: &[u8],
    ) -> Result<Zeroizing<String>, CryptoError> {
        let transport = |reason: String| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason,
        };
        let target = format!("{TARGET_PREFIX}{operation}");
        let mut request = self
            .agent
            .post(self.url.as_str())
            .header("content-type", KMS_CONTENT_TYPE)
            .header("host", self.host.as_str())
            .header("x-amz-target", target.as_str());
        for (name, value) in self.signed_headers(operation, &target, body)? {
            request = request.header(name, value);
        }
        let response = request.send(body).map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let text = Zeroizing::new(
            response
                .into_body()
                .read_to_string()
                .map_err(|e| transport(format!("reading the response: {e}")))?,
        );
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<KmsErrorBody>(&text) {
            Ok(err) if !err.error_type.is_empty() => {
                let error_type = err
                    .error_type
                    .rsplit('#')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                Err(CryptoError::Kms {
                    endpoint: self.endpoint.clone(),
                    operation,
                    key: if key.is_empty() { "-" } else { key }.to_string(),
                    error_type,
                    message: if err.message.is_empty() {
                        "(no message)".to_string()
                    } else {
                        err.message
                    },
                })
            }
            _ => {
                let snippet: String = text.chars().take(200).collect();
                Err(transport(format!(
                    "HTTP {status} that is not a KMS error: {snippet}"
                )))
            }
        }
    }

    /// Calls any KMS operation (e.g. `CreateKey`, `CreateAlias`, `DisableKey`) with a JSON body and returns
    /// the JSON answer. `key` names the key in error messages (empty if none). For operations that return
    /// plaintext key material use the typed methods, which zeroise it.
    ///
    /// # Errors
    /// [`CryptoError::Kms`] for a KMS error answer, [`CryptoError::KmsTransport`] otherwise.
    pub fn call(
        &self,
        operation: &'static str,
        key: &str,
        body: &Value,
    ) -> Result<Value, CryptoError> {
        let text = self.send(operation, key, body.to_string().as_bytes())?;
        serde_json::from_str(&text).map_err(|e| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason: format!("the answer is not JSON: {e}"),
        })
    }

    /// `DescribeKey`: resolves a key id, key ARN, alias name (`alias/...`) or alias ARN to the key's
    /// metadata (notably its ARN).
    ///
    /// # Errors
    /// [`CryptoError::Kms`] (`NotFoundException` for an unknown key or alias), [`CryptoError::KmsTransport`].
    pub fn describe_key(&self, key_id: &str) -> Result<KmsKeyInfo, CryptoError> {
        let answer = self.call("DescribeKey", key_id, &json!({ "KeyId": key_id }))?;
        let meta = &answer["KeyMetadata"];
        let text = |name: &str| meta[name].as_str().unwrap_or_default().to_string();
        let arn = text("Arn");
        if arn.is_empty() {
            return Err(CryptoError::KmsTransport {
                endpoint: self.endpoint.clone(),
                operation: "DescribeKey",
                reason: "the answer has no KeyMetadata.Arn".into(),
            });
        }
        let key_spec = match text("KeySpec") {
            s if s.is_empty() => text("CustomerMasterKeySpec"),
            s => s,
        };
        Ok(KmsKeyInfo {
            arn,
            key_id: text("KeyId"),
            enabled: meta["Enabled"].as_bool().unwrap_or(false),
            key_state: text("KeyState"),
            key_usage: text("KeyUsage"),
            key_spec,
            created_at: meta["CreationDate"].as_f64().map_or(0, |t| t as u64),
        })
    }

    fn context_json(context: &[u8]) -> Value {
        json!({ KMS_CONTEXT_KEY: STANDARD.encode(context) })
    }

    fn decode_ciphertext(
        &self,
        operation: &'static str,
        answer: &str,
    ) -> Result<(Vec<u8>, String), CryptoError> {
        let transport = |reason: String| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason,
        };
        let parsed: CiphertextResponse =
            serde_json::from_str(answer).map_err(|e| transport(format!("bad answer: {e}")))?;
        let blob = STANDARD
            .decode(parsed.ciphertext)
            .map_err(|e| transport(format!("bad CiphertextBlob: {e}")))?;
        Ok((blob, parsed.key_id))
    }

    /// `Encrypt`: wraps `key` under the KMS key `key_id` (ideally its ARN, which is recorded in the result),
    /// binding `context` as the encryption context.
    ///
    /// # Errors
    /// [`CryptoError::Kms`] (e.g. `DisabledException`, `NotFoundException`), [`CryptoError::KmsTransport`].
    pub fn encrypt_key(
        &self,
        key_id: &str,
        key: &DataKey,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        let plaintext = Zeroizing::new(STANDARD.encode(key.as_bytes()));
        let body = Zeroizing::new(
            json!({
                "KeyId": key_id,
                "Plaintext": plaintext.as_str(),
                "EncryptionContext": KmsClient::context_json(context),
            })
            .to_string(),
        );
        let answer = self.send("Encrypt", key_id, body.as_bytes())?;
        let (ciphertext, arn) = self.decode_ciphertext("Encrypt", &answer)?;
        Ok(kms_wrapped(key_id, arn, ciphertext))
    }

    fn plaintext_key(
        &self,
        operation: &'static str,
        parsed: &mut PlaintextResponse,
    ) -> Result<DataKey, CryptoError> {
        let mut bytes =
            STANDARD
                .decode(parsed.plaintext.as_bytes())
                .map_err(|e| CryptoError::KmsTransport {
                    endpoint: self.endpoint.clone(),
                    operation,
                    reason: format!("bad Plaintext: {e}"),
                });
        parsed.plaintext.zeroize();
        let key = match &bytes {
            Ok(b) if b.len() == KEY_LEN => DataKey::from_slice(b),
            _ => None,
        };
        if let Ok(b) = &mut bytes {
            b.zeroize();
        }
        bytes?;
        key.ok_or_else(|| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason: format!("the plaintext is not a {KEY_LEN}-byte key"),
        })
    }

    fn parse_plaintext(
        &self,
        operation: &'static str,
        answer: &str,
    ) -> Result<PlaintextResponse, CryptoError> {
        serde_json::from_str(answer).map_err(|e| CryptoError::KmsTransport {
            endpoint: self.endpoint.clone(),
            operation,
            reason: format!("bad answer: {e}"),
        })
    }

    /// `Decrypt`: unwraps a [`WrapAlgorithm::KmsEncrypt`] key with the KMS key it names, checking `context`.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if `wrapped` is not KMS-wrapped; [`CryptoError::Kms`]
    /// (`InvalidCiphertextException` for another context or a tampered ciphertext, `DisabledException`,
    /// `NotFoundException`, `AccessDeniedException`, ...); [`CryptoError::KmsTransport`].
    pub fn decrypt_key(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<DataKey, CryptoError> {
        if wrapped.algorithm != WrapAlgorithm::KmsEncrypt {
            return Err(CryptoError::malformed(
                "wrapped key",
                format!(
                    "wrapped with {} by master key {}, not by KMS",
                    wrapped.algorithm, wrapped.key_id_of_wrapping_key
                ),
            ));
        }
        let key_id = wrapped.key_id_of_wrapping_key.as_str();
        let body = json!({
            "KeyId": key_id,
            "CiphertextBlob": STANDARD.encode(&wrapped.ciphertext),
            "EncryptionContext": KmsClient::context_json(context),
        })
        .to_string();
        let answer = self.send("Decrypt", key_id, body.as_bytes())?;
        let mut parsed = self.parse_plaintext("Decrypt", &answer)?;
        self.plaintext_key("Decrypt", &mut parsed)
    }

    /// `GenerateDataKey` (`KeySpec` `AES_256`): a fresh data key made by KMS, with its wrapped form.
    ///
    /// # Errors
    /// As [`KmsClient::encrypt_key`].
    pub fn generate_data_key(
        &self,
        key_id: &str,
        context: &[u8],
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        let body = json!({
            "KeyId": key_id,
            "KeySpec": "AES_256",
            "EncryptionContext": KmsClient::context_json(context),
        })
        .to_string();
        let answer = self.send("GenerateDataKey", key_id, body.as_bytes())?;
        let mut parsed = self.parse_plaintext("GenerateDataKey", &answer)?;
        let key = self.plaintext_key("GenerateDataKey", &mut parsed)?;
        let ciphertext =
            STANDARD
                .decode(&parsed.ciphertext)
                .map_err(|e| CryptoError::KmsTransport {
                    endpoint: self.endpoint.clone(),
                    operation: "GenerateDataKey",
                    reason: format!("bad CiphertextBlob: {e}"),
                })?;
        let arn = std::mem::take(&mut parsed.key_id);
        Ok((key, kms_wrapped(key_id, arn, ciphertext)))
    }
}

/// A data key wrapped by KMS: recorded under the key ARN KMS answered with (`arn`), or under the
/// `key_id` asked for when the answer named none.
fn kms_wrapped(key_id: &str, arn: String, ciphertext: Vec<u8>) -> WrappedKey {
    WrappedKey {
        key_id_of_wrapping_key: KeyId::new(if arn.is_empty() {
            key_id.to_string()
        } else {
            arn
        }),
        algorithm: WrapAlgorithm::KmsEncrypt,
        ciphertext,
    }
}

/// A [`KeyProvider`] whose master key is one KMS key: data keys are wrapped with KMS `Encrypt` and unwrapped
/// with KMS `Decrypt` (any KMS key named by the wrapped key, so keys wrapped before the node's KMS key was
/// changed still unwrap while that key is usable).
///
/// Rotation: KMS rotates a key's material itself (enable automatic rotation on the key in KMS; old material
/// stays usable for decryption), so [`KeyProvider::rotate`] returns the same key ARN — re-wrapping under it is
/// still valid and cheap. Shoal never destroys KMS keys: [`KeyProvider::retire`] refuses the current key and
/// is a no-op for others (disable or schedule deletion in KMS itself).
pub struct KmsKeyProvider {
    client: Arc<KmsClient>,
    key: KmsKeyInfo,
}

impl fmt::Debug for KmsKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKeyProvider")
            .field("endpoint", &self.client.endpoint())
            .field("key", &self.key.arn)
            .finish()
    }
}

impl KmsKeyProvider {
    /// A provider wrapping under `key_id` (id, ARN, alias name or alias ARN), resolved to its ARN with
    /// `DescribeKey` now, so a wrong key or endpoint fails at start-up.
    ///
    /// # Errors
    /// Errors of [`KmsClient::describe_key`]; [`CryptoError::Provider`] if the key is disabled, not
    /// symmetric or not for encryption.
    pub fn new(client: Arc<KmsClient>, key_id: &str) -> Result<KmsKeyProvider, CryptoError> {
        let key = client.describe_key(key_id)?;
        if !key.usable_for_wrapping() {
            return Err(CryptoError::Provider {
                provider: format!("kms {}", client.endpoint()),
                message: format!(
                    "KMS key {} cannot wrap data keys: state {}, usage {}, spec {} (need an enabled SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key)",
                    key.arn, key.key_state, key.key_usage, key.key_spec
                ),
            });
        }
        tracing::info!(endpoint = %client.endpoint(), key = %key.arn, "KMS master key");
        Ok(KmsKeyProvider { client, key })
    }

    /// The KMS client.
    pub fn client(&self) -> &Arc<KmsClient> {
        &self.client
    }

    /// The master key's ARN.
    pub fn key_arn(&self) -> &str {
        &self.key.arn
    }
}

impl KeyProvider for KmsKeyProvider {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        self.client.encrypt_key(&self.key.arn, key, context)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError> {
        self.client.decrypt_key(wrapped, context)
    }

    fn current_key_id(&self) -> KeyId {
        KeyId::new(self.key.arn.clone())
    }

    fn rotate(&self) -> Result<KeyId, CryptoError> {
        Ok(self.current_key_id())
    }

    fn retire(&self, id: &KeyId) -> Result<(), CryptoError> {
        if id.as_str() == self.key.arn {
            return Err(CryptoError::RetireCurrent { id: id.clone() });
        }
        Ok(())
    }

    fn master_keys(&self) -> Vec<MasterKeyInfo> {
        vec![MasterKeyInfo {
            id: self.current_key_id(),
            state: MasterKeyState::Active,
            created_at: if self.key.created_at == 0 {
                now_unix()
            } else {
                self.key.created_at
            },
            retired_at: None,
        }]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn config(endpoint: &str) -> KmsConfig {
        KmsConfig {
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            key_id: None,
            credentials: KmsCredentials::new(
                "AKID",
                "very-secret-value",
                Some("tok-secret".into()),
            ),
        }
    }

    #[test]
    fn endpoint_must_be_an_http_url_without_path() {
        assert!(KmsClient::new(&config("http://127.0.0.1:5000")).is_ok());
        assert!(KmsClient::new(&config("https://kms.us-east-1.amazonaws.com/")).is_ok());
        for bad in [
            "127.0.0.1:5000",
            "ftp://x",
            "http://x/path",
            "http://x/?a=b",
            "",
        ] {
            let err = KmsClient::new(&config(bad)).unwrap_err().to_string();
            assert!(err.contains("invalid KMS endpoint"), "{bad}: {err}");
        }
        let mut c = config("http://x");
        c.region = " ".into();
        assert!(KmsClient::new(&c).is_err());
    }

    #[test]
    fn credentials_never_print_their_secrets() {
        let c = config("http://x");
        let printed = format!("{c:?} {:?}", KmsClient::new(&c).unwrap());
        assert!(!printed.contains("very-secret-value"), "{printed}");
        assert!(!printed.contains("tok-secret"), "{printed}");
        assert!(printed.contains("AKID"));
    }

    #[test]
    fn unreachable_endpoint_is_named_in_the_error() {
        // Port 9 (discard) on loopback: nothing listens there in the test environment.
        let client = KmsClient::new(&config("http://127.0.0.1:9")).unwrap();
        let err = client.describe_key("alias/x").unwrap_err();
        assert!(matches!(err, CryptoError::KmsTransport { .. }), "{err:?}");
        assert!(err.to_string().contains("http://127.0.0.1:9"), "{err}");
    }
}
