//! The dashboard from outside: a signed-in HTTP client (cookies by hand, as a browser
//! sends them) and users to sign in with.
#![allow(dead_code)]

use mailcast::accounts::{Role, create_user};
use mailcast::store::Store;
use reqwest::header::{COOKIE, SET_COOKIE};

pub const PASSWORD: &str = "correct horse battery staple";

/// Creates `email` with `role` and [`PASSWORD`].
pub async fn user(store: &Store, email: &str, role: Role) {
    create_user(store, email, role, Some(PASSWORD.into()))
        .await
        .unwrap();
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// `name=value` of the cookie `name` among `Set-Cookie` headers.
pub fn cookie_pair(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The `value` of `<input … name="NAME" value="…">` or `<meta name="NAME" content="…">`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let attribute = if rest.starts_with(&format!("name=\"{name}\" content=")) {
        "content=\""
    } else {
        "value=\""
    };
    let start = rest.find(attribute)? + attribute.len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].to_string())
}

pub struct Dashboard {
    pub base: String,
    pub client: reqwest::Client,
    /// `mailcast_session=…`, once signed in.
    pub session: Option<String>,
    pub csrf: String,
}

/// The outcome of one sign-in attempt.
pub struct SignIn {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub location: Option<String>,
}

impl Dashboard {
    pub fn new(base: &str) -> Dashboard {
        Dashboard {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: None,
            csrf: String::new(),
        }
    }

    /// Fetches the sign-in form and posts `email` and `password` with its token.
    pub async fn try_sign_in(&self, email: &str, password: &str) -> SignIn {
        let form = self
            .client
            .get(format!("{}/app/login", self.base))
            .send()
            .await
            .unwrap();
        let login_cookie = cookie_pair(&set_cookies(&form), "mailcast_login").unwrap();
        let html = form.text().await.unwrap();
        let token = hidden_value(&html, "login_token").unwrap();
        let response = self
            .client
            .post(format!("{}/app/login", self.base))
            .header(COOKIE, login_cookie)
            .form(&[
                ("email", email),
                ("password", password),
                ("login_token", &token),
                ("next", "/app"),
            ])
            .send()
            .await
            .unwrap();
        SignIn {
            status: response.status().as_u16(),
            set_cookies: set_cookies(&response),
            location: response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
        }
    }

    /// Signs in (panics when refused) and reads the page's CSRF token.
    pub async fn sign_in(base: &str, email: &str) -> Dashboard {
        let mut dashboard = Dashboard::new(base);
        let outcome = dashboard.try_sign_in(email, PASSWORD).await;
        assert_eq!(outcome.status, 303, "sign-in of {email} refused");
        dashboard.session = cookie_pair(&outcome.set_cookies, "mailcast_session");
        assert!(dashboard.session.is_some(), "no session cookie");
        let (_, html) = dashboard.get("/app/campaigns").await;
        dashboard.csrf = hidden_value(&html, "csrf-token").expect("csrf meta tag");
        dashboard
    }

    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(session) = &self.session {
            request = request.header(COOKIE, session);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.get_response(path).await;
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.post_raw(path, &fields).await
    }

    /// POSTs exactly `fields`.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        if let Some(session) = &self.session {
            request = request.header(COOKIE, session);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}
