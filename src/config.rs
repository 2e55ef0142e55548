//! Settings read from the command line and the environment, validated at start.

use std::path::PathBuf;

/// Where delivered messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// One `.eml` file per message in a directory.
    Outbox(PathBuf),
    /// An SMTP relay; sessions are kept open and reused.
    Smtp(SmtpUrl),
    /// Named SMTP relays in failover order.
    Relays(Vec<(String, SmtpUrl)>),
}

/// A validated `smtp://`, `smtps://` (implicit TLS) or `smtp://…?tls=starttls` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad SMTP URL '{url}': {reason}")]
pub struct SmtpUrlError {
    pub url: String,
    pub reason: String,
}

impl SmtpUrl {
    pub fn parse(text: &str) -> Result<SmtpUrl, SmtpUrlError> {
        let fail = |reason: &str| SmtpUrlError {
            url: crate::store::redact_url(text),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(text).map_err(|e| fail(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| fail("it names no host"))?
            .to_string();
        let query_tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let tls = match (url.scheme(), query_tls.as_deref()) {
            ("smtps", None | Some("implicit")) => SmtpTls::Implicit,
            ("smtp", None | Some("none")) => SmtpTls::None,
            ("smtp", Some("starttls")) => SmtpTls::StartTls,
            ("smtp" | "smtps", Some(other)) => {
                return Err(fail(&format!(
                    "tls={other} is not one of none, starttls, implicit"
                )));
            }
            (scheme, _) => {
                return Err(fail(&format!(
                    "scheme '{scheme}' is not smtp:// or smtps://"
                )));
            }
        };
        let default_port = match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        };
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s);
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        Ok(SmtpUrl {
            url: crate::store::redact_url(text),
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            credentials,
        })
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_starttls_and_implicit_tls_urls() {
        let plain = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("127.0.0.1", 2525, SmtpTls::None)
        );
        let starttls = SmtpUrl::parse("smtp://user:p%40ss@mail.example.com?tls=starttls").unwrap();
        assert_eq!(starttls.port, 587);
        assert_eq!(starttls.tls, SmtpTls::StartTls);
        assert_eq!(starttls.credentials, Some(("user".into(), "p@ss".into())));
        assert!(!starttls.url.contains("p%40ss"), "password is redacted");
        assert_eq!(
            SmtpUrl::parse("smtps://mail.example.com").unwrap().port,
            465
        );
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_url() {
        let error = SmtpUrl::parse("http://mail.example.com").unwrap_err();
        assert!(error.to_string().contains("scheme 'http'"), "{error}");
        let error = SmtpUrl::parse("smtp://mail.example.com?tls=maybe").unwrap_err();
        assert!(error.to_string().contains("tls=maybe"), "{error}");
        assert!(SmtpUrl::parse("not a url").is_err());
    }
}
