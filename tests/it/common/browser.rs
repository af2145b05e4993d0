//! A headless Chromium driven over the W3C WebDriver protocol (a few JSON calls to
//! chromedriver, with the reqwest client the tests already use).
//!
//! `Browser::start` finds Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`, or `PLANTILLA_CHROMIUM` / `PLANTILLA_CHROMEDRIVER`). Without them it
//! answers `None` with a notice, except in CI (`CI` set), where it panics: CI must run the
//! browser tests (`.ci/run` installs the packages).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for something on the page lasts.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    driver: Child,
    url: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn program(var: &str, default: &str) -> Option<String> {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    std::path::Path::new(&path).exists().then_some(path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// A new headless browser with an English UI (`navigator.language` `en-US`).
    pub async fn start() -> Option<Browser> {
        Self::start_in("en-US").await
    }

    /// A new headless browser whose UI language (`navigator.language`) is `lang`.
    pub async fn start_in(lang: &str) -> Option<Browser> {
        let chromium = program("PLANTILLA_CHROMIUM", "/usr/bin/chromium");
        let driver = program("PLANTILLA_CHROMEDRIVER", "/usr/bin/chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "chromium and chromedriver are missing: CI must run the browser tests \
                     (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "notice: /usr/bin/chromium or /usr/bin/chromedriver is missing; this browser \
                 test is skipped (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut browser = Browser {
            driver: child,
            url,
            session: String::new(),
            client,
            _profile: profile,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = browser
                .client
                .get(format!("{}/status", browser.url))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", format!("--lang={lang}"),
                         format!("--user-data-dir={}", browser._profile.path().display())],
                "prefs": {"intl.accept_languages": lang},
            }
        }}});
        let answer = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Some(browser)
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{}", self.url, path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
            .await
            .expect("a WebDriver call")
            .json()
            .await
            .expect("a WebDriver answer")
    }

    /// A command of this session: its value, or the WebDriver error.
    async fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let v = self
            .raw(method, &format!("/session/{}{path}", self.session), body)
            .await;
        if v["value"].get("error").is_some() {
            return Err(v["value"].clone());
        }
        Ok(v["value"].clone())
    }

    /// A command of this session; panics on a WebDriver error.
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// The text of an element, `None` when the page replaced it meanwhile (live pages redraw).
    async fn try_text(&self, element: &str) -> Option<String> {
        self.try_cmd("GET", &format!("/element/{element}/text"), None)
            .await
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// The first element matching `css`, if any now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .raw(
                "POST",
                &format!("/session/{}/element", self.session),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(el) = self.find(css).await {
                return el;
            }
            if Instant::now() > deadline {
                let body = self.page_text().await;
                panic!("no element '{css}' after {WAIT:?}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` answers `expected` (the page sets things up after it loads:
    /// asserting at once races with it); panics with the last answer after `WAIT`.
    pub async fn wait_value(&self, script: &str, expected: Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.execute(script).await;
            if got == expected {
                return;
            }
            if Instant::now() > deadline {
                panic!("'{script}' answers {got}, not {expected}, after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        while self.find(css).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "'{css}' still there after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element matching `css` shows text containing `needle`; its text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(el) = self.find(css).await {
                let text = self.try_text(&el).await.unwrap_or_default();
                if text.contains(needle) {
                    return text;
                }
                if Instant::now() > deadline {
                    panic!("'{css}' says {text:?}, not {needle:?}, after {WAIT:?}");
                }
            } else if Instant::now() > deadline {
                panic!("no element '{css}' after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, element: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// All the visible text of the page.
    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(body) => self.try_text(&body).await.unwrap_or_default(),
            None => String::new(),
        }
    }

    /// Clicks the element matching `css`, again if the page replaced it before the click.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.wait_for(css).await;
            match self
                .try_cmd("POST", &format!("/element/{el}/click"), Some(json!({})))
                .await
            {
                Ok(_) => return,
                Err(e) if e["error"] == "stale element reference" && Instant::now() < deadline => {}
                Err(e) => panic!("cannot click '{css}': {e}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        self.cmd("POST", &format!("/element/{el}/clear"), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Runs a script in the page; its return value.
    pub async fn execute(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The browser's cookies (as WebDriver sees them, HttpOnly ones included).
    pub async fn cookies(&self) -> Vec<Value> {
        self.cmd("GET", "/cookie", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 screenshot"))
            .expect("a PNG")
    }

    /// Ends the WebDriver session (the browser exits) and chromedriver.
    pub async fn quit(mut self) {
        let _ = self
            .raw("DELETE", &format!("/session/{}", self.session), None)
            .await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test: end the session if the driver still answers, then the driver.
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.url, self.session);
            let _ = std::thread::spawn(move || blocking_delete(&url)).join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A DELETE without an async runtime (drop may run outside one): a plain HTTP/1.1 request
/// over a TCP socket.
fn blocking_delete(url: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    Ok(())
}
