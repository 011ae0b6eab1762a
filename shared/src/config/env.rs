//! Settings read from the environment: the Lambda functions' whole configuration (read once at
//! cold start) and what the local runner takes from it beside its file. A missing or malformed
//! value stops the process with a message naming the variable, instead of failing requests later.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;
use crate::auth::{AdminClaim, DEFAULT_JWKS_TTL, JwksCache, JwtAuth, MIN_JWT_SECRET_BYTES};
use crate::edges::Cors;
use crate::gateway::GatewayOptions;
use crate::secret::SecretString;

/// Default of `MAESTRO_MAX_BODY_BYTES`; a Function URL takes at most 6 MB anyway.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default of `MAESTRO_INVOCATION_MARGIN_SECS`: time kept between a call's end and the
/// invocation's deadline to send the in-band error, the log event and the reconcile.
pub const DEFAULT_INVOCATION_MARGIN_SECS: u64 = 5;

/// Reads one variable.
type Reader = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads variables: the process environment in `main`, a map in tests.
pub struct Env {
    read: Reader,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    pub fn from_fn(read: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { read: Box::new(read) }
    }

    /// Fixed values, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }

    /// The value, trimmed; unset and blank are the same.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.read)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// The parsed value, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Setting { name, message: format!("`{v}`: {e}") }),
        }
    }

    /// The token verifier the environment describes: RS256/ES256 with the keys at
    /// `MAESTRO_JWKS_URL` when set, else HS256 with `MAESTRO_JWT_SECRET` (refused when shorter
    /// than [`MIN_JWT_SECRET_BYTES`]), else `None`; see [`Self::jwt_auth_with`] for the rest.
    pub fn jwt_auth(&self) -> Result<Option<JwtAuth>, ConfigError> {
        let secret = self.get("MAESTRO_JWT_SECRET").map(SecretString::new);
        match secret {
            Some(secret) => {
                if secret.expose().len() < MIN_JWT_SECRET_BYTES {
                    return Err(ConfigError::Setting {
                        name: "MAESTRO_JWT_SECRET",
                        message: format!("use at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
                    });
                }
                self.jwt_auth_with(&secret).map(Some)
            }
            None if self.get("MAESTRO_JWKS_URL").is_some() => self.jwks_auth().map(Some),
            None => Ok(None),
        }
    }

    /// The verifier with `secret` as the HS256 secret (the local runner's own, checked where it
    /// is made) unless `MAESTRO_JWKS_URL` names a key set (with `MAESTRO_JWKS_TTL_SECS`); then
    /// `MAESTRO_JWT_ISSUER`, `MAESTRO_JWT_AUDIENCE` (comma-separated), `MAESTRO_ADMIN_CLAIM` and
    /// `MAESTRO_ADMIN_VALUE`. The same rules for every process.
    pub fn jwt_auth_with(&self, secret: &SecretString) -> Result<JwtAuth, ConfigError> {
        if self.get("MAESTRO_JWKS_URL").is_some() {
            return self.jwks_auth();
        }
        Ok(self.with_token_rules(JwtAuth::hs256(secret)))
    }

    fn jwks_auth(&self) -> Result<JwtAuth, ConfigError> {
        let url = self.required("MAESTRO_JWKS_URL")?;
        let ttl = Duration::from_secs(self.parse_or("MAESTRO_JWKS_TTL_SECS", DEFAULT_JWKS_TTL.as_secs())?);
        let cache =
            JwksCache::new(&url, ttl).map_err(|message| ConfigError::Setting { name: "MAESTRO_JWKS_URL", message })?;
        Ok(self.with_token_rules(JwtAuth::jwks(cache)))
    }

    /// Issuer, audience and admin claim, whichever verifier checks the signature.
    fn with_token_rules(&self, auth: JwtAuth) -> JwtAuth {
        let audience = self
            .get("MAESTRO_JWT_AUDIENCE")
            .map(|v| v.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        auth.with_issuer(self.get("MAESTRO_JWT_ISSUER")).with_audience(audience).with_admin_claim(self.admin_claim())
    }

    /// `MAESTRO_ADMIN_CLAIM` and `MAESTRO_ADMIN_VALUE`, each defaulted when unset or blank.
    pub fn admin_claim(&self) -> AdminClaim {
        let defaults = AdminClaim::default();
        AdminClaim {
            claim: self.get("MAESTRO_ADMIN_CLAIM").unwrap_or(defaults.claim),
            value: self.get("MAESTRO_ADMIN_VALUE").unwrap_or(defaults.value),
        }
    }

    /// `MAESTRO_JWT_SECRET` or `MAESTRO_JWKS_URL`, required (the chat function verifies every
    /// token itself).
    pub fn required_jwt_auth(&self) -> Result<Arc<JwtAuth>, ConfigError> {
        self.jwt_auth()?.map(Arc::new).ok_or(ConfigError::Missing("MAESTRO_JWT_SECRET or MAESTRO_JWKS_URL"))
    }

    /// `MAESTRO_MAX_BODY_BYTES` (default 4 MiB, at least 1 KiB).
    pub fn max_body_bytes(&self) -> Result<usize, ConfigError> {
        let bytes = self.parse_or("MAESTRO_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        if bytes < 1024 {
            return Err(ConfigError::Setting {
                name: "MAESTRO_MAX_BODY_BYTES",
                message: "must be at least 1024".into(),
            });
        }
        Ok(bytes)
    }

    /// `MAESTRO_CORS_ORIGINS`: comma-separated origins (or `*`) whose browser pages may call
    /// the function; unset or blank, no CORS.
    pub fn cors_origins(&self) -> Result<Cors, ConfigError> {
        let list = self.get("MAESTRO_CORS_ORIGINS").unwrap_or_default();
        Cors::from_comma_list(&list).map_err(|message| ConfigError::Setting { name: "MAESTRO_CORS_ORIGINS", message })
    }

    /// `MAESTRO_INVOCATION_MARGIN_SECS` (default 5, 1–300): how long before the invocation's
    /// deadline the chat function ends a call.
    pub fn invocation_margin(&self) -> Result<Duration, ConfigError> {
        let secs = self.parse_or("MAESTRO_INVOCATION_MARGIN_SECS", DEFAULT_INVOCATION_MARGIN_SECS)?;
        if !(1..=300).contains(&secs) {
            return Err(ConfigError::Setting {
                name: "MAESTRO_INVOCATION_MARGIN_SECS",
                message: "must be 1 to 300".into(),
            });
        }
        Ok(Duration::from_secs(secs))
    }

    /// The gateway settings: `MAESTRO_CATALOG_TTL_SECS` (default 5), the default retry policy with
    /// `MAESTRO_STREAM_DEADLINE_MS` as its `stream_deadline_ms` (default: `deadline_ms`, 300 s),
    /// and `MAESTRO_ALLOW_DEMO` (default `false`; the template never sets it): the offline
    /// `demo/echo` model for local invokes against an emulator.
    pub fn gateway_options(&self) -> Result<GatewayOptions, ConfigError> {
        let mut defaults = GatewayOptions::default();
        let ttl = self.parse_or("MAESTRO_CATALOG_TTL_SECS", defaults.catalog_ttl.as_secs())?;
        let allow_demo = self.parse_or("MAESTRO_ALLOW_DEMO", false)?;
        if self.get("MAESTRO_STREAM_DEADLINE_MS").is_some() {
            let ms: u64 = self.parse_or("MAESTRO_STREAM_DEADLINE_MS", 0)?;
            if ms == 0 {
                return Err(ConfigError::Setting {
                    name: "MAESTRO_STREAM_DEADLINE_MS",
                    message: "must be above 0".into(),
                });
            }
            defaults.policy.stream_deadline_ms = Some(ms);
        }
        Ok(GatewayOptions {
            catalog_ttl: Duration::from_secs(ttl),
            allow_demo,
            credit_markup: self.credit_markup()?,
            ..defaults
        })
    }

    /// `MAESTRO_CREDITS`: `on` turns users' credits on (every call holds and is charged), `off`
    /// or unset leaves them off.
    /// Alerting on AWS (the roll-up): `MAESTRO_ALERT_REPEAT_MINUTES` (default 60), and SES for
    /// e-mail channels with `MAESTRO_ALERT_EMAIL_FROM` (a verified sender) and optionally
    /// `MAESTRO_ALERT_EMAIL_REGION`. Rules and channels themselves live in the store.
    pub fn alerting(&self) -> Result<crate::alerts::rules::AlertingConfig, ConfigError> {
        let defaults = crate::alerts::rules::AlertingConfig::default();
        let repeat_minutes = self.parse_or("MAESTRO_ALERT_REPEAT_MINUTES", defaults.repeat_minutes)?;
        let ses = self.get("MAESTRO_ALERT_EMAIL_FROM").filter(|from| !from.trim().is_empty()).map(|from| {
            crate::alerts::channels::SesConfig {
                from,
                region: self.get("MAESTRO_ALERT_EMAIL_REGION").filter(|r| !r.trim().is_empty()),
                configuration_set: None,
            }
        });
        Ok(crate::alerts::rules::AlertingConfig { repeat_minutes, ses, ..defaults })
    }

    pub fn credits_enabled(&self) -> Result<bool, ConfigError> {
        match self.get("MAESTRO_CREDITS").as_deref() {
            None | Some("off") => Ok(false),
            Some("on") => Ok(true),
            Some(other) => {
                Err(ConfigError::Setting { name: "MAESTRO_CREDITS", message: format!("`{other}`: use `on` or `off`") })
            }
        }
    }

    /// `MAESTRO_CREDITS_MARKUP` (a multiplier, default 1) and `MAESTRO_CREDITS_MODEL_MARKUP`
    /// (`provider/model=1.5,…`): what credits charge for a call's cost.
    pub fn credit_markup(&self) -> Result<crate::pricing::CreditMarkup, ConfigError> {
        let default = self.parse_or("MAESTRO_CREDITS_MARKUP", 1.0_f64)?;
        crate::pricing::CreditMarkup::new(default, &[])
            .map_err(|message| ConfigError::Setting { name: "MAESTRO_CREDITS_MARKUP", message })?;
        let mut per_model = Vec::new();
        for pair in self.get("MAESTRO_CREDITS_MODEL_MARKUP").unwrap_or_default().split(',').map(str::trim) {
            if pair.is_empty() {
                continue;
            }
            let parsed = pair.split_once('=').and_then(|(m, v)| Some((m.trim().to_string(), v.trim().parse().ok()?)));
            let Some((model, markup)) = parsed else {
                return Err(ConfigError::Setting {
                    name: "MAESTRO_CREDITS_MODEL_MARKUP",
                    message: format!("`{pair}`: write `provider/model=1.5`"),
                });
            };
            per_model.push((model, markup));
        }
        crate::pricing::CreditMarkup::new(default, &per_model)
            .map_err(|message| ConfigError::Setting { name: "MAESTRO_CREDITS_MODEL_MARKUP", message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_bad_numbers_name_their_variable() {
        let env = Env::from_pairs(&[("A", "  "), ("N", "12"), ("BAD", "twelve")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.parse_or("N", 1u32).expect("number"), 12);
        assert_eq!(env.parse_or("UNSET", 7u32).expect("default"), 7);
        let err = env.parse_or::<u32>("BAD", 1).expect_err("not a number").to_string();
        assert!(err.starts_with("BAD is invalid: `twelve`"), "{err}");
        assert_eq!(env.required("UNSET").expect_err("missing").to_string(), "UNSET must be set");
    }

    #[test]
    fn jwt_secrets_must_be_long_enough() {
        assert!(Env::from_pairs(&[]).jwt_auth().expect("unset is fine").is_none());
        assert!(Env::from_pairs(&[]).required_jwt_auth().is_err());
        assert!(Env::from_pairs(&[("MAESTRO_JWT_SECRET", "short")]).jwt_auth().is_err());
        let long = "x".repeat(MIN_JWT_SECRET_BYTES);
        assert!(Env::from_pairs(&[("MAESTRO_JWT_SECRET", &long)]).jwt_auth().expect("long").is_some());
    }

    #[test]
    fn credits_are_off_unless_on_and_markups_are_checked() {
        assert!(!Env::from_pairs(&[]).credits_enabled().expect("unset"));
        assert!(Env::from_pairs(&[("MAESTRO_CREDITS", "on")]).credits_enabled().expect("on"));
        assert!(Env::from_pairs(&[("MAESTRO_CREDITS", "yes")]).credits_enabled().is_err());
        let env = Env::from_pairs(&[
            ("MAESTRO_CREDITS_MARKUP", "1.2"),
            ("MAESTRO_CREDITS_MODEL_MARKUP", "openai/gpt-4o=1.5, demo/echo=0"),
        ]);
        let markup = env.gateway_options().expect("options").credit_markup;
        assert_eq!((markup.charge("a", "b", 100), markup.charge("openai", "gpt-4o", 100)), (120, 150));
        assert_eq!(markup.charge("demo", "echo", 100), 0);
        let bad = Env::from_pairs(&[("MAESTRO_CREDITS_MODEL_MARKUP", "gpt-4o")]).credit_markup().expect_err("no =");
        assert!(bad.to_string().starts_with("MAESTRO_CREDITS_MODEL_MARKUP is invalid"), "{bad}");
        let negative = Env::from_pairs(&[("MAESTRO_CREDITS_MARKUP", "-1")]).credit_markup().expect_err("below 0");
        assert!(negative.to_string().starts_with("MAESTRO_CREDITS_MARKUP is invalid"), "{negative}");
    }

    #[test]
    fn gateway_options_leave_the_demo_provider_out_unless_asked() {
        let env = Env::from_pairs(&[("MAESTRO_CATALOG_TTL_SECS", "30")]);
        let options = env.gateway_options().expect("options");
        assert_eq!(options.catalog_ttl, Duration::from_secs(30));
        assert!(!options.allow_demo);
        let demo = Env::from_pairs(&[("MAESTRO_ALLOW_DEMO", "true")]);
        assert!(demo.gateway_options().expect("options").allow_demo);
        assert!(Env::from_pairs(&[("MAESTRO_ALLOW_DEMO", "yes")]).gateway_options().is_err());
        assert_eq!(env.max_body_bytes().expect("default"), DEFAULT_MAX_BODY_BYTES);
        assert!(Env::from_pairs(&[("MAESTRO_MAX_BODY_BYTES", "10")]).max_body_bytes().is_err());
    }

    #[test]
    fn cors_origins_are_off_unless_listed_and_checked() {
        assert!(!Env::from_pairs(&[]).cors_origins().expect("unset").is_enabled());
        assert!(!Env::from_pairs(&[("MAESTRO_CORS_ORIGINS", " ")]).cors_origins().expect("blank").is_enabled());
        let two = Env::from_pairs(&[("MAESTRO_CORS_ORIGINS", "https://a.example,http://localhost:3000")]);
        assert!(two.cors_origins().expect("two").is_enabled());
        let bad = Env::from_pairs(&[("MAESTRO_CORS_ORIGINS", "a.example")]).cors_origins().expect_err("no scheme");
        assert!(bad.to_string().starts_with("MAESTRO_CORS_ORIGINS is invalid"), "{bad}");
    }

    #[test]
    fn the_stream_deadline_and_the_invocation_margin_come_from_the_environment() {
        let unset = Env::from_pairs(&[]);
        assert_eq!(unset.gateway_options().expect("options").policy.stream_deadline(), Duration::from_secs(300));
        assert_eq!(unset.invocation_margin().expect("default"), Duration::from_secs(DEFAULT_INVOCATION_MARGIN_SECS));
        let env = Env::from_pairs(&[("MAESTRO_STREAM_DEADLINE_MS", "900000"), ("MAESTRO_INVOCATION_MARGIN_SECS", "8")]);
        let options = env.gateway_options().expect("options");
        assert_eq!(options.policy.stream_deadline(), Duration::from_secs(900));
        assert_eq!(options.policy.deadline(), Duration::from_secs(300), "non-streamed calls keep deadline_ms");
        assert_eq!(env.invocation_margin().expect("margin"), Duration::from_secs(8));
        for bad in ["0", "-1", "soon"] {
            assert!(Env::from_pairs(&[("MAESTRO_STREAM_DEADLINE_MS", bad)]).gateway_options().is_err(), "{bad}");
        }
        for bad in ["0", "301", "five"] {
            assert!(Env::from_pairs(&[("MAESTRO_INVOCATION_MARGIN_SECS", bad)]).invocation_margin().is_err(), "{bad}");
        }
    }
}
