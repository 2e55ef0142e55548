//! A small W3C WebDriver client for the browser tests: it starts Debian's chromedriver
//! on a free loopback port, opens a session in a headless Chromium with a throwaway
//! profile, and drives it with plain HTTP commands. Failures panic, naming the
//! command and what WebDriver said, since that is how a test fails.
#![allow(dead_code)]

use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `find` waits for an element to appear.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long chromedriver may take to answer `/status` with ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one WebDriver command may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
/// Attempts at starting chromedriver, in case another process takes its port first.
const START_ATTEMPTS: usize = 3;
/// The window height of `screenshot_at`.
const SCREENSHOT_HEIGHT: u32 = 900;

/// WebDriver's codes for keys without a character, for `press_keys` and `type_text`.
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
pub const ESCAPE: &str = "\u{E00C}";
pub const BACKSPACE: &str = "\u{E003}";

/// A headless Chromium driven through a chromedriver of its own. Dropping it kills
/// both; `quit` ends the session politely first.
pub struct Browser {
    session: Session,
    // Declared before `profile`: Chromium dies before its profile is removed.
    driver: Driver,
    profile: tempfile::TempDir,
}

/// An element of the page, as the session refers to it.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
}

impl Browser {
    /// A browser with a `width` x `height` window, or None when chromedriver or
    /// Chromium is not installed (the test then skips). Under `MAILCAST_TEST_CI` a
    /// missing browser is a failure instead.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        if !installed() {
            if std::env::var_os("MAILCAST_TEST_CI").is_some() {
                panic!(
                    "MAILCAST_TEST_CI is set but {CHROMEDRIVER} or {CHROMIUM} is missing: \
                     install chromium and chromium-driver"
                );
            }
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client for chromedriver");
        let driver = Driver::start(&client).await;
        let profile = tempfile::tempdir().expect("a temp dir for the Chromium profile");
        let id = new_session(&client, &driver.base_url(), profile.path(), width, height).await;
        let session = Session {
            client,
            url: format!("{}/session/{id}", driver.base_url()),
        };
        Some(Browser {
            session,
            driver,
            profile,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.session.url().await
    }

    pub async fn title(&self) -> String {
        as_string(self.command(Method::GET, "/title", None).await)
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.session.find_in("", css).await
    }

    /// Every element matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .command(Method::POST, "/elements", Some(css_locator(css)))
            .await;
        match found {
            Value::Array(references) => references
                .iter()
                .map(|reference| self.session.element(reference))
                .collect(),
            other => panic!("WebDriver POST /elements for `{css}` returned {other}"),
        }
    }

    /// The first element matching `css` now, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.session.try_find_in("", css).await
    }

    /// The text of the element matching `css` once it contains `needle`, checking
    /// every 100 ms until `timeout`.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(text) = self.current_text(css).await {
                if text.contains(needle) {
                    return text;
                }
                last = Some(text);
            }
            if Instant::now() >= deadline {
                let seen = match last {
                    Some(text) => format!("its last text was {text:?}"),
                    None => "no element matched".to_string(),
                };
                panic!(
                    "`{css}` did not contain {needle:?} within {timeout:?} on {}; {seen}",
                    self.url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// What the page shows: `document.body.innerText`.
    pub async fn page_text(&self) -> String {
        self.session.page_text().await
    }

    pub async fn page_source(&self) -> String {
        as_string(self.command(Method::GET, "/source", None).await)
    }

    /// Runs `script` as a function body in the page (`return` gives the result);
    /// `args` are its `arguments`, elements passed as `Element::as_arg`.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.session.execute(script, args).await
    }

    /// Saves what the window shows as a PNG at `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = as_string(self.command(Method::GET, "/screenshot", None).await);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("a base64 screenshot from WebDriver");
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        tokio::fs::write(path, png)
            .await
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// A screenshot of `url` in a window `width` px wide and 900 px high.
    pub async fn screenshot_at(&self, url: &str, width: u32, path: &Path) {
        self.set_window_size(width, SCREENSHOT_HEIGHT).await;
        self.goto(url).await;
        self.screenshot(path).await;
    }

    /// Resizes the window; in headless Chromium the page gets the full width and
    /// somewhat less than the full height.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.command(Method::POST, "/window/rect", Some(rect)).await;
    }

    /// The cookies visible to the current page, as WebDriver describes them.
    pub async fn cookies(&self) -> Vec<Value> {
        match self.command(Method::GET, "/cookie", None).await {
            Value::Array(cookies) => cookies,
            other => panic!("WebDriver GET /cookie returned {other}"),
        }
    }

    /// Presses and releases each key of `keys` in turn, to whatever has the focus.
    /// Keys without a character are WebDriver codes such as `ENTER`.
    pub async fn press_keys(&self, keys: &str) {
        let strokes: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                let key = key.to_string();
                [
                    json!({ "type": "keyDown", "value": key }),
                    json!({ "type": "keyUp", "value": key }),
                ]
            })
            .collect();
        let actions = json!({
            "actions": [{ "type": "key", "id": "keyboard", "actions": strokes }]
        });
        self.command(Method::POST, "/actions", Some(actions)).await;
    }

    /// Ends the session, which closes Chromium, then stops chromedriver.
    pub async fn quit(mut self) {
        // The driver is killed below either way, so a failed delete changes nothing.
        let _ = self.session.client.delete(&self.session.url).send().await;
        self.driver.stop().await;
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.session.command(method, path, body).await
    }

    /// The text of the element matching `css` now, if there is one and it is
    /// still on the page.
    async fn current_text(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).await?;
        let text = element
            .session
            .try_command(Method::GET, &element.path("/text"), None)
            .await
            .ok()?;
        text.as_str().map(str::to_string)
    }
}

impl Element {
    pub async fn click(&self) {
        self.command(Method::POST, "/click", None).await;
    }

    pub async fn clear(&self) {
        self.command(Method::POST, "/clear", None).await;
    }

    /// Types `text` into the element, after what it already holds.
    pub async fn type_text(&self, text: &str) {
        self.command(Method::POST, "/value", Some(json!({ "text": text })))
            .await;
    }

    /// The element's rendered text.
    pub async fn text(&self) -> String {
        as_string(self.command(Method::GET, "/text", None).await)
    }

    /// The attribute `name`, None when the element has none.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        match self
            .command(Method::GET, &format!("/attribute/{name}"), None)
            .await
        {
            Value::Null => None,
            Value::String(value) => Some(value),
            other => Some(other.to_string()),
        }
    }

    /// The DOM property `name` (such as `value` or `checked`), as JSON.
    pub async fn property(&self, name: &str) -> Value {
        self.command(Method::GET, &format!("/property/{name}"), None)
            .await
    }

    /// The first descendant matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.session.find_in(&self.path(""), css).await
    }

    /// The element as an argument of `Browser::execute`.
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.session.command(method, &self.path(path), body).await
    }

    /// The session-relative path of the element's command `rest`.
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }
}

/// Where a session's commands go.
#[derive(Clone)]
struct Session {
    client: reqwest::Client,
    /// `http://127.0.0.1:{port}/session/{id}`
    url: String,
}

impl Session {
    /// The command's value; panics on any error.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method.clone(), path, body).await {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {method} {path} failed: {error}"),
        }
    }

    async fn try_command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        request(&self.client, method, &format!("{}{path}", self.url), body).await
    }

    /// The first element matching `css` under `scope` (the page when empty, else an
    /// element's path), waiting for it to appear.
    async fn find_in(&self, scope: &str, css: &str) -> Element {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            if let Some(element) = self.try_find_in(scope, css).await {
                return element;
            }
            if Instant::now() >= deadline {
                let url = self.url().await;
                let text = excerpt(&self.page_text().await, 600);
                panic!(
                    "no element matches `{css}` after {FIND_TIMEOUT:?} on {url}; \
                     the page says:\n{text}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn try_find_in(&self, scope: &str, css: &str) -> Option<Element> {
        let path = format!("{scope}/element");
        match self
            .try_command(Method::POST, &path, Some(css_locator(css)))
            .await
        {
            Ok(reference) => Some(self.element(&reference)),
            Err(error) if error.error == "no such element" => None,
            Err(error) => panic!("WebDriver POST {path} for `{css}` failed: {error}"),
        }
    }

    async fn url(&self) -> String {
        as_string(self.command(Method::GET, "/url", None).await)
    }

    async fn page_text(&self) -> String {
        let script = "return document.body ? document.body.innerText : '';";
        as_string(self.execute(script, Vec::new()).await)
    }

    async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.command(Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// The element a WebDriver reference names.
    fn element(&self, reference: &Value) -> Element {
        let Some(id) = reference.get(ELEMENT_KEY).and_then(Value::as_str) else {
            panic!("not a WebDriver element reference: {reference}");
        };
        Element {
            session: self.clone(),
            id: id.to_string(),
        }
    }
}

/// chromedriver, in a process group of its own so that killing the group also ends
/// the Chromium it started. Killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// A chromedriver answering on a free loopback port.
    async fn start(client: &reqwest::Client) -> Driver {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut driver = Driver::spawn(free_port());
            match driver.wait_ready(client).await {
                Ok(()) => return driver,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("chromedriver did not start: {}", failures.join("; "));
    }

    fn spawn(port: u16) -> Driver {
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("running {CHROMEDRIVER}: {e}"));
        Driver { child, port }
    }

    /// Polls `/status` until chromedriver says it is ready.
    async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<(), String> {
        let status_url = format!("{}/status", self.base_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("chromedriver's status") {
                return Err(format!("on port {} it exited with {status}", self.port));
            }
            if is_ready(client, &status_url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "on port {} not ready after {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills chromedriver and everything in its process group, then reaps it.
    async fn stop(&mut self) {
        self.kill();
        let _ = self.child.wait().await;
    }

    /// Kills the process group unless chromedriver has already been reaped (its
    /// group id might then be someone else's).
    fn kill(&mut self) {
        let Some(pid) = self.child.id() else {
            return;
        };
        let group = libc::pid_t::try_from(pid).expect("a pid");
        // SAFETY: kill(2) takes no pointers; the group is the one chromedriver leads.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.start_kill();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An error as WebDriver reports it: `{"value":{"error":..,"message":..}}`.
#[derive(Debug)]
struct WebDriverError {
    error: String,
    message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// Sends one WebDriver command and returns its `value`. A POST always carries a JSON
/// body, `{}` when there is nothing to say. Panics when chromedriver cannot be
/// reached or answers with something that is not WebDriver.
async fn request(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let mut builder = client.request(method.clone(), url);
    if method == Method::POST || body.is_some() {
        builder = builder.json(&body.unwrap_or_else(|| json!({})));
    }
    let response = builder
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let mut reply: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url} answered {status} without JSON: {e}"));
    let value = reply
        .get_mut("value")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    Err(WebDriverError {
        error: field("error").unwrap_or_else(|| format!("HTTP {status}")),
        message: field("message").unwrap_or_else(|| value.to_string()),
    })
}

/// Opens a session in headless Chromium and returns its id.
async fn new_session(
    client: &reqwest::Client,
    driver_url: &str,
    profile: &Path,
    width: u32,
    height: u32,
) -> String {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-quic".to_string(),
        "--no-first-run".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--disable-dev-shm-usage".to_string(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={width},{height}"),
    ];
    let capabilities = json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "timeouts": { "pageLoad": 30_000, "script": 30_000, "implicit": 0 },
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
            }
        }
    });
    let url = format!("{driver_url}/session");
    let created = request(client, Method::POST, &url, Some(capabilities))
        .await
        .unwrap_or_else(|e| panic!("could not start Chromium through chromedriver: {e}"));
    match created.get("sessionId").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => panic!("chromedriver created a session without an id: {created}"),
    }
}

async fn is_ready(client: &reqwest::Client, status_url: &str) -> bool {
    let Ok(response) = client.get(status_url).send().await else {
        return false;
    };
    let Ok(status) = response.json::<Value>().await else {
        return false;
    };
    status["value"]["ready"] == json!(true)
}

fn installed() -> bool {
    Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists()
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the port's address").port()
}

fn css_locator(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn as_string(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => panic!("WebDriver returned {other} where it should return a string"),
    }
}

/// The first `max` characters of `text`, marked when there was more.
fn excerpt(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut shown: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}
