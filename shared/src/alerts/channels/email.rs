//! E-mail for the email channels: [`SmtpEmail`] (the local runner, any SMTP server) and
//! [`SesEmail`] (AWS: one SESv2 `SendEmail` call, signed with SigV4 and the credentials of the
//! SDK configuration the rest of the AWS backend uses). Both send one plain-text message to all of
//! a channel's recipients.

use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{ChannelError, DEFAULT_TIMEOUT, EmailSender, looks_like_address, snippet};
use crate::secret::SecretString;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on this machine (credentials are refused otherwise).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS", port 465).
    Tls,
}

/// The SMTP server alert e-mail goes through.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 25 with `tls = "none"`, 587 with `"starttls"`, 465 with `"tls"`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The sender, `alerts@example.com` or `Maestro <alerts@example.com>`.
    pub from: String,
    #[serde(default)]
    pub tls: SmtpTls,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// Checks the settings; a message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let host = self.host.trim();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err("smtp: `host` must be a host name or address".into());
        }
        if self.port == Some(0) {
            return Err("smtp: `port` must not be 0".into());
        }
        self.from.parse::<Mailbox>().map_err(|_| "smtp: `from` is not an e-mail address".to_string())?;
        match (&self.username, &self.password) {
            (Some(user), Some(password)) if !user.trim().is_empty() && !password.is_empty() => {
                if self.tls == SmtpTls::None && !is_loopback(host) {
                    return Err("smtp: `username`/`password` need `tls = \"starttls\"` or `\"tls\"` (with \
                                `tls = \"none\"` the password would cross the network in clear text)"
                        .into());
                }
            }
            (None, None) => {}
            _ => return Err("smtp: `username` and `password` go together, both non-empty".into()),
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Alert e-mail through an SMTP server. A connection per message: alerts are rare.
pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    password: Option<SecretString>,
}

impl std::fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEmail").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpEmail {
    pub fn new(config: &SmtpConfig) -> Result<Self, ChannelError> {
        config.validate().map_err(ChannelError::Config)?;
        let from = config.from.parse::<Mailbox>().map_err(|_| ChannelError::Config("smtp: bad `from`".into()))?;
        let host = config.host.trim();
        let tls_error =
            |e: lettre::transport::smtp::Error| ChannelError::Config(format!("smtp: TLS for `{host}`: {e}"));
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?,
        };
        let mut builder = builder.port(config.port()).timeout(Some(DEFAULT_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(Self { transport: builder.build(), from, password: config.password.clone() })
    }
}

#[async_trait::async_trait]
impl EmailSender for SmtpEmail {
    async fn send(&self, to: &[String], subject: &str, text_body: &str) -> Result<(), ChannelError> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox =
                address.parse::<Mailbox>().map_err(|_| ChannelError::Email("a recipient is not an address".into()))?;
            message = message.to(mailbox);
        }
        let message = message
            .body(text_body.to_string())
            .map_err(|e| ChannelError::Email(format!("cannot write the message: {e}")))?;
        self.transport.send(message).await.map(drop).map_err(|e| {
            let detail = format!("SMTP: {e}");
            let detail = match &self.password {
                Some(password) => crate::secret::redact(&detail, password.expose()),
                None => detail,
            };
            ChannelError::Email(snippet(&detail))
        })
    }
}

/// Alert e-mail through Amazon SES.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesConfig {
    /// The sender: an address or domain verified in SES.
    pub from: String,
    /// SES's region when it is not the SDK configuration's (SES is not in every region).
    #[serde(default)]
    pub region: Option<String>,
    /// An SES configuration set (event publishing, dedicated IPs), if any.
    #[serde(default)]
    pub configuration_set: Option<String>,
}

/// Alert e-mail through SESv2's `SendEmail` (`POST /v2/email/outbound-emails`), signed here with
/// SigV4 rather than through an SDK crate of its own (build time). Region, credentials and an
/// emulator's endpoint come from the SDK configuration.
pub struct SesEmail {
    http: reqwest::Client,
    credentials: SharedCredentialsProvider,
    region: String,
    endpoint: reqwest::Url,
    from: String,
    configuration_set: Option<String>,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for SesEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesEmail").field("region", &self.region).field("from", &self.from).finish_non_exhaustive()
    }
}

impl SesEmail {
    pub fn new(sdk: &aws_config::SdkConfig, config: SesConfig) -> Result<Self, ChannelError> {
        let sender = config
            .from
            .parse::<Mailbox>()
            .map_err(|_| ChannelError::Config("ses: `from` is not an e-mail address".into()))?;
        if !looks_like_address(sender.email.as_ref()) {
            return Err(ChannelError::Config("ses: `from` is not an e-mail address".into()));
        }
        let region = config
            .region
            .filter(|r| !r.trim().is_empty())
            .or_else(|| sdk.region().map(ToString::to_string))
            .ok_or_else(|| ChannelError::Config("ses: no region (set AWS_REGION or the SES region)".into()))?;
        let endpoint = match sdk.endpoint_url() {
            Some(endpoint) => endpoint.to_string(),
            None => format!("https://email.{region}.amazonaws.com"),
        };
        let endpoint = reqwest::Url::parse(&endpoint)
            .map_err(|_| ChannelError::Config("ses: the AWS endpoint is not a URL".into()))?;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| ChannelError::Config("ses: the AWS configuration has no credentials provider".into()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ChannelError::Config(format!("ses: cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            credentials,
            region,
            endpoint,
            from: config.from,
            configuration_set: config.configuration_set,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The bound on one SES call (default [`DEFAULT_TIMEOUT`]); [`super::Channels`] bounds a
    /// whole send besides.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// One signed SESv2 call: `POST <endpoint><path>` with a JSON body; the status and the
    /// answer. Credentials are asked for on every call: alerts are rare, and the provider chain
    /// renews expiring ones itself.
    pub(super) async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, String), ChannelError> {
        let url = self.endpoint.join(path).map_err(|_| ChannelError::Config("ses: bad request path".into()))?;
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| ChannelError::Email(format!("SES: no AWS credentials: {e}")))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ses")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ChannelError::Email(format!("SES: cannot sign: {e}")))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new("POST", url.as_str(), headers.into_iter(), SignableBody::Bytes(&body))
            .map_err(|e| ChannelError::Email(format!("SES: cannot sign: {e}")))?;
        let (instructions, _signature) =
            sign(signable, &params).map_err(|e| ChannelError::Email(format!("SES: cannot sign: {e}")))?.into_parts();
        let mut request = self.http.post(url).header("content-type", "application/json").timeout(self.timeout);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ChannelError::Email(format!("SES: {}", super::describe(&e))))?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let answer = super::read_answer(response).await?;
        let answer = match error_type {
            Some(kind) if !(200..300).contains(&status) => format!("{kind}: {answer}"),
            _ => answer,
        };
        Ok((status, answer))
    }
}

#[async_trait::async_trait]
impl EmailSender for SesEmail {
    async fn send(&self, to: &[String], subject: &str, text_body: &str) -> Result<(), ChannelError> {
        let mut request = serde_json::json!({
            "FromEmailAddress": self.from,
            "Destination": { "ToAddresses": to },
            "Content": {
                "Simple": {
                    "Subject": { "Data": subject, "Charset": "UTF-8" },
                    "Body": { "Text": { "Data": text_body, "Charset": "UTF-8" } },
                },
            },
        });
        if let Some(set) = &self.configuration_set {
            request["ConfigurationSetName"] = serde_json::Value::String(set.clone());
        }
        let body = serde_json::to_vec(&request).map_err(|e| ChannelError::Email(format!("SES: {e}")))?;
        let (status, answer) = self.post("/v2/email/outbound-emails", body).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ChannelError::Email(format!("SES answered HTTP {status}: {}", snippet(&answer))))
        }
    }
}
