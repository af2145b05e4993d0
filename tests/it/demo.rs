//! `plantilla demo` prints a curl command that works as printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the demo even when an assertion fails.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs every `curl -sS -X POST` line the demo prints and answers their JSON answers.
fn run_demo_and_send(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_plantilla"))
            .args(["demo", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("PLANTILLA_ADMIN_TOKEN")
            .env("PLANTILLA_SANDBOX_STATUS_DELAY_MS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let curls: Vec<String> = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("demo output"))
        .take_while(|l| !l.contains("Press Ctrl-C"))
        .filter(|l| l.trim_start().starts_with("curl -sS -X POST"))
        .collect();
    assert_eq!(curls.len(), 3, "two sends and a preview: {curls:?}");
    curls
        .iter()
        .map(|curl| {
            let out = Command::new("sh")
                .args(["-c", curl.trim()])
                .output()
                .expect("run the printed curl");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("JSON answer")
        })
        .collect()
}

#[test]
fn the_printed_curl_sends_a_template_and_the_demo_can_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let answers = run_demo_and_send(dir.path());
        for answer in &answers[..2] {
            assert_eq!(answer["success"], true, "{answer}");
            assert_eq!(answer["message"], "Pending", "{answer}");
            assert!(
                answer["data"]["message_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("msg_")
            );
        }
        // The preview of the image send: valid, with the link and the payload in Meta's shape.
        let preview = &answers[2];
        assert_eq!(preview["valid"], true, "{preview}");
        assert_eq!(
            preview["components"][0],
            serde_json::json!({"type": "header", "parameters": [{"type": "image",
                "image": {"link": "https://example.com/promos/semana.jpg"}}]}),
            "{preview}"
        );
        assert_eq!(
            preview["components"][2]["parameters"][0]["payload"], "promo-semana-si",
            "{preview}"
        );
    }
}

#[test]
fn the_demo_prints_the_console_and_serves_it_at_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_plantilla"))
            .args(["demo", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("PLANTILLA_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("demo output"))
        .take_while(|l| !l.contains("Press Ctrl-C"))
        .collect();
    let console = lines
        .iter()
        .find_map(|l| l.strip_prefix("Console: "))
        .unwrap_or_else(|| panic!("no console line: {lines:?}"));
    assert!(
        console.contains("sign in with the admin token"),
        "{console}"
    );
    let url = console.split_whitespace().next().unwrap();
    let base = url.strip_suffix("/console").expect("a /console URL");
    let curl = |args: &[&str]| {
        let out = Command::new("curl").args(args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let root = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("{base}/"),
    ]);
    assert_eq!(root, format!("303 {base}/console"));
    let page = curl(&["-s", url]);
    assert!(page.contains("/console/assets/app.js"), "{page}");
}
