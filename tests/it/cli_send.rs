// `plantilla send`: the real binary against a real server, one number and a CSV, the results
// file, resuming with the same idempotency keys, retries after a lost answer, `--dry-run`, and
// that the token never shows.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use plantilla::cli::csv;
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn output(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `plantilla send <args>` against `url` with `token` in `PLANTILLA_TOKEN`.
async fn send(url: &str, token: &str, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plantilla"));
    cmd.arg("send")
        .args(args)
        .env("PLANTILLA_URL", url)
        .env("PLANTILLA_TOKEN", token)
        .env_remove("PLANTILLA_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run plantilla");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        token.is_empty() || !(run.stdout.contains(token) || run.stderr.contains(token)),
        "the token shows in the output:\n{}",
        run.output()
    );
    run
}

async fn count_messages(t: &TestApp) -> i64 {
    t.sql_i64("SELECT COUNT(*) FROM messages").await
}

/// The results file's records, header first.
fn read_results(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("results file");
    csv::parse(&text)
        .unwrap()
        .into_iter()
        .map(|r| r.fields)
        .collect()
}

fn phone(i: usize) -> String {
    format!("5076{i:07}")
}

/// A CSV of `n` recipients, written as a spreadsheet would (BOM, CRLF, quoted cells with
/// commas, quotes and a newline). Rows 10 and 120 have bad numbers, row 50 lacks its `order`
/// param and row 200 has a field too many. Returns the file and the numbers, in order.
fn recipients_csv(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let mut text = String::from("\u{feff}to,clientName,name,param.order\r\n");
    let mut numbers = Vec::new();
    for i in 1..=n {
        let to = match i {
            10 => "123".to_string(),
            120 => format!("+{}", phone(i)),
            _ => phone(i),
        };
        let line = match i {
            7 => format!("{to},\"Pérez, Ana\",\"Ana \"\"la grande\"\"\",A-{i}\r\n"),
            8 => format!("{to},\"Luis\nSegundo\",Luis,A-{i}\r\n"),
            50 => format!("{to},Eva,Eva,\r\n"),
            200 => format!("{to},Eva,Eva,A-{i},extra\r\n"),
            _ => format!("{to},Cliente {i},Cliente {i},A-{i}\r\n"),
        };
        text.push_str(&line);
        numbers.push(to);
    }
    let path = dir.join("recipients.csv");
    std::fs::write(&path, text).unwrap();
    (path, numbers)
}

both_databases!(sends_one_template_to_one_number);
async fn sends_one_template_to_one_number() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--to",
            "50761234567",
            "--param",
            "name=Ana",
            "--param",
            "order=A-1",
            "--client-name",
            "Ana",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.output());
    let answer: Value = serde_json::from_str(&run.stdout).expect("JSON answer");
    assert_eq!(answer["status"], "queued", "{answer}");
    assert_eq!(answer["to"], "50761234567");
    let message = t.message(&s(&answer["id"])).await;
    assert_eq!(message["phoneNumber"], "50761234567");
    assert_eq!(message["params"], json!({"name": "Ana", "order": "A-1"}));

    // The same key again: the first answer, nothing sent twice.
    let args = [
        "--template",
        &seed.template_id,
        "--to",
        "50761234568",
        "--param",
        "name=Eva",
        "--param",
        "order=A-2",
        "--idempotency-key",
        "order-A-2",
    ];
    let first = send(&t.base, &seed.token, &args).await;
    let again = send(&t.base, &seed.token, &args).await;
    assert_eq!(first.code, 0, "{}", first.output());
    assert_eq!(again.code, 0, "{}", again.output());
    assert_eq!(first.stdout, again.stdout);
    assert_eq!(count_messages(&t).await, 2);

    // A refused send exits 2 with the problem.
    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--to",
            "50761234569",
            "--param",
            "name=Ana",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.output());
    let problem: Value = serde_json::from_str(&run.stdout).expect("problem JSON");
    assert_eq!(problem["type"], "/problems/missing-params", "{problem}");
    assert!(run.stderr.contains("missing-params"), "{}", run.output());

    // An account API key names its channel; a template can be named instead of given by id.
    let key = t
        .create(
            &format!("/v1/admin/accounts/{}/api-keys", seed.account_id),
            json!({"name": "cli"}),
        )
        .await;
    let api_key = s(&key["key"]);
    let by_name = [
        "--template-name",
        "order_update",
        "--language",
        "es",
        "--to",
        "50761234570",
        "--param",
        "name=Ana",
        "--param",
        "order=A-3",
    ];
    let run = send(&t.base, &api_key, &by_name).await;
    assert_eq!(run.code, 2, "{}", run.output());
    assert!(run.stdout.contains("channelId"), "{}", run.output());
    let mut with_channel = by_name.to_vec();
    with_channel.extend(["--channel", &seed.channel_id]);
    let run = send(&t.base, &api_key, &with_channel).await;
    assert_eq!(run.code, 0, "{}", run.output());
    assert_eq!(count_messages(&t).await, 3);

    // A token the server does not know: exit 1, and the token is not echoed (checked by `send`).
    let run = send(
        &t.base,
        "pk_not-a-real-token-0123456789",
        &["--template", &seed.template_id, "--to", "50761234571"],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains("refused the token"), "{}", run.output());
    // The token given as an argument instead of the environment does not show either.
    let run = send(
        &t.base,
        "",
        &[
            "--token",
            "pk_argument-token-0123456789",
            "--template",
            &seed.template_id,
            "--to",
            "50761234571",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(
        !run.stderr.contains("pk_argument-token-0123456789"),
        "{}",
        run.output()
    );
}

both_databases!(sends_a_csv_in_batches_and_resumes_without_sending_twice);
async fn sends_a_csv_in_batches_and_resumes_without_sending_twice() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let (csv_path, numbers) = recipients_csv(t.dir.path(), 300);
    let args = [
        "--template",
        &seed.template_id,
        "--csv",
        csv_path.to_str().unwrap(),
        "--chunk",
        "128",
    ];
    let run = send(&t.base, &seed.token, &args).await;
    assert_eq!(run.code, 2, "some rows are rejected: {}", run.output());
    assert!(run.stdout.contains("rows       300"), "{}", run.output());
    assert!(run.stdout.contains("accepted   295"), "{}", run.output());
    assert!(
        run.stdout
            .contains("rejected   5 (csv: 1, missing-params: 1, validation: 3)"),
        "{}",
        run.output()
    );
    assert!(run.stderr.contains("sent 300/300 rows"), "{}", run.output());
    assert_eq!(count_messages(&t).await, 295);

    let results_path = t.dir.path().join("recipients.csv.results.csv");
    let results = read_results(&results_path);
    assert_eq!(
        results[0],
        vec![
            "row",
            "to",
            "status",
            "messageId",
            "conversationId",
            "error"
        ]
    );
    assert_eq!(results.len(), 301);
    for (i, row) in results[1..].iter().enumerate() {
        let n = i + 1;
        assert_eq!(row[0], n.to_string());
        assert_eq!(row[1], numbers[i], "row {n}");
        match n {
            10 | 120 => {
                assert_eq!(row[2], "rejected", "row {n}: {row:?}");
                assert!(row[5].starts_with("validation: to: "), "row {n}: {row:?}");
                assert!(row[3].is_empty());
            }
            50 => {
                assert_eq!(row[2], "rejected", "{row:?}");
                assert!(row[5].starts_with("missing-params: "), "{row:?}");
            }
            8 => {
                // The quoted line break stays in its cell (one row, four fields) and reaches
                // the server, which refuses control characters in a contact's name.
                assert_eq!(row[2], "rejected", "{row:?}");
                assert!(row[5].starts_with("validation: clientName"), "{row:?}");
            }
            200 => {
                assert_eq!(row[2], "rejected", "{row:?}");
                assert_eq!(
                    row[5], "csv: the row has 5 fields but the header has 4",
                    "{row:?}"
                );
            }
            _ => {
                assert_eq!(row[2], "accepted", "row {n}: {row:?}");
                assert!(row[5].is_empty(), "row {n}: {row:?}");
                let message = t.message(&row[3]).await;
                assert_eq!(message["phoneNumber"], numbers[i], "row {n}");
                assert_eq!(message["conversationId"], row[4].as_str(), "row {n}");
                assert_eq!(message["params"]["order"], format!("A-{n}"), "row {n}");
            }
        }
    }
    // Quoted cells arrive as written.
    let row7 = t.message(&results[7][3]).await;
    assert_eq!(row7["params"]["name"], "Ana \"la grande\"");
    assert_eq!(
        t.conversation(&results[7][4]).await["clientName"],
        "Pérez, Ana"
    );

    // The same command again resumes: nothing new is sent and the results are the same.
    let first_results = std::fs::read_to_string(&results_path).unwrap();
    let again = send(&t.base, &seed.token, &args).await;
    assert_eq!(again.code, 2, "{}", again.output());
    assert!(
        again.stdout.contains("accepted   295"),
        "{}",
        again.output()
    );
    assert_eq!(count_messages(&t).await, 295);
    assert_eq!(
        std::fs::read_to_string(&results_path).unwrap(),
        first_results
    );

    // Another --chunk with the same key is refused rather than sent twice.
    let other = t.dir.path().join("other-chunks.csv");
    let mut rechunked = args.to_vec();
    rechunked[5] = "100";
    rechunked.extend(["--results", other.to_str().unwrap()]);
    let run = send(&t.base, &seed.token, &rechunked).await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains("--chunk changed"), "{}", run.output());
    assert_eq!(count_messages(&t).await, 295);
    let results = read_results(&other);
    assert_eq!(results.len(), 301, "every row has a result");
    for row in &results[101..] {
        let expected = if row[0] == "200" {
            "rejected"
        } else {
            "not-sent"
        };
        assert_eq!(row[2], expected, "{row:?}");
    }
}

/// Forwards requests to `upstream`; answers the first batch request with 502 after the server
/// has handled it, as when an answer is lost on the way back. Returns its URL and the
/// `Idempotency-Key` of each batch request it saw.
async fn lossy_proxy(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    let keys = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let seen = keys.clone();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (client, seen, upstream) = (client.clone(), seen.clone(), upstream.clone());
        async move {
            let first_batch = uri.path() == "/v1/messages/batch" && {
                let mut seen = seen.lock().unwrap();
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                seen.push(key);
                seen.len() == 1
            };
            let mut request = client
                .request(method, format!("{upstream}{uri}"))
                .body(body);
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.bytes().await.unwrap();
            if first_batch {
                return (StatusCode::BAD_GATEWAY, "upstream went away").into_response();
            }
            (status, [("content-type", "application/json")], body).into_response()
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, keys)
}

both_databases!(a_lost_answer_is_retried_with_the_same_key_and_sends_nothing_twice);
async fn a_lost_answer_is_retried_with_the_same_key_and_sends_nothing_twice() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let mut text = String::from("to,name,order\n");
    for i in 1..=250 {
        text.push_str(&format!("{},N{i},O{i}\n", phone(i)));
    }
    let path = t.dir.path().join("list.csv");
    std::fs::write(&path, text).unwrap();
    let (proxy, keys) = lossy_proxy(t.base.clone()).await;
    let run = send(
        &proxy,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            path.to_str().unwrap(),
            "--chunk",
            "100",
            "--retry-delay-ms",
            "10",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.output());
    assert!(run.stderr.contains("HTTP 502"), "{}", run.output());
    assert!(run.stdout.contains("accepted   250"), "{}", run.output());
    assert_eq!(count_messages(&t).await, 250);
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(keys[0], keys[1], "the retry uses the same key");
    assert!(keys[0].ends_with(".0") && keys[2].ends_with(".1") && keys[3].ends_with(".2"));
    let results = read_results(&t.dir.path().join("list.csv.results.csv"));
    assert!(results[1..].iter().all(|r| r[2] == "accepted"));

    // A server that cannot be reached: bounded attempts, exit 1, every row marked not sent.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = t.dir.path().join("unreachable.csv");
    let run = send(
        &closed,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            path.to_str().unwrap(),
            "--results",
            out.to_str().unwrap(),
            "--attempts",
            "3",
            "--retry-delay-ms",
            "10",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(
        run.stderr.contains("cannot connect") && run.stderr.contains("after 3 attempts"),
        "{}",
        run.output()
    );
    let results = read_results(&out);
    assert_eq!(results.len(), 251);
    assert!(results[1..].iter().all(|r| r[2] == "not-sent"));
}

both_databases!(dry_run_checks_the_rows_and_sends_nothing);
async fn dry_run_checks_the_rows_and_sends_nothing() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let (csv_path, _) = recipients_csv(t.dir.path(), 300);
    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            csv_path.to_str().unwrap(),
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.output());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.output());
    assert!(
        lines[0].starts_with("row 10 (line 12): phoneNumber"),
        "{}",
        run.output()
    );
    assert!(lines[1].starts_with("row 120 (line 122): phoneNumber must not start with '+'"));
    assert!(lines[2].starts_with("row 200 (line 202): the row has 5 fields"));
    assert_eq!(
        lines[3],
        "300 rows: 297 valid, 3 invalid; nothing was sent (--dry-run)"
    );
    assert_eq!(count_messages(&t).await, 0);
    assert!(!t.dir.path().join("recipients.csv.results.csv").exists());

    // A clean file passes; a repeated number is a warning. No token is needed.
    let clean = t.dir.path().join("clean.csv");
    std::fs::write(
        &clean,
        "phoneNumber,name\n50761000001,A\n50761000002,B\n50761000001,C\n",
    )
    .unwrap();
    let run = send(
        &t.base,
        "",
        &[
            "--template",
            &seed.template_id,
            "--csv",
            clean.to_str().unwrap(),
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.output());
    assert!(
        run.stdout
            .contains("row 3 (line 4): warning: 50761000001 is also on row 1")
    );
    assert!(
        run.stdout
            .contains("3 rows: 3 valid, 0 invalid, 1 repeat an earlier number")
    );

    // A header without a number column is an error before anything is sent.
    std::fs::write(&clean, "name,order\nA,B\n").unwrap();
    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            clean.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(
        run.stderr.contains("needs a column 'to'"),
        "{}",
        run.output()
    );
}

both_databases!(a_csv_takes_header_and_button_values_as_dotted_columns);
async fn a_csv_takes_header_and_button_values_as_dotted_columns() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": seed.account_id, "name": "invoice", "language": "es",
                   "appId": "77", "header": {"format": "DOCUMENT"}, "message": "Factura {{n}}",
                   "buttons": [{"type": "QUICK_REPLY", "text": "Pagar"}]}),
        )
        .await;
    let csv_path = t.dir.path().join("invoices.csv");
    std::fs::write(
        &csv_path,
        "to,n,header.link,param.header.filename,button.0.payload\n\
         50761000001,F-1,https://files.example/f-1.pdf,F-1.pdf,pay:F-1\n\
         50761000002,F-2,ftp://files.example/f-2.pdf,F-2.pdf,pay:F-2\n\
         50761000003,F-3,,,pay:F-3\n",
    )
    .unwrap();
    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &s(&template["id"]),
            "--csv",
            csv_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.output());
    let results = read_results(&t.dir.path().join("invoices.csv.results.csv"));
    assert_eq!(results[1][2], "accepted", "{results:?}");
    let message = t.message(&results[1][3]).await;
    assert_eq!(
        message["params"],
        json!({"n": "F-1", "header.link": "https://files.example/f-1.pdf",
               "header.filename": "F-1.pdf", "button.0.payload": "pay:F-1"})
    );
    assert_eq!(results[2][2], "rejected", "{results:?}");
    assert!(
        results[2][5].starts_with("invalid-params: ") && results[2][5].contains("header.link"),
        "{results:?}"
    );
    // An empty cell is left out: no media for the header, a missing param named `header`.
    assert_eq!(results[3][2], "rejected", "{results:?}");
    assert!(results[3][5].starts_with("missing-params: "), "{results:?}");
    assert_eq!(count_messages(&t).await, 1);
}

both_databases!(a_csv_sent_with_at_is_scheduled_and_a_bad_time_is_refused_before_sending);
async fn a_csv_sent_with_at_is_scheduled_and_a_bad_time_is_refused_before_sending() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let path = t.dir.path().join("tomorrow.csv");
    std::fs::write(
        &path,
        "to,name,param.order\n50761110001,Ana,A-1\n50761110002,Eva,A-2\n",
    )
    .unwrap();
    let at = plantilla::format_ms(plantilla::now_ms() + 24 * 3_600_000);
    let csv_arg = path.to_str().unwrap();
    let bad = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            csv_arg,
            "--at",
            "tomorrow 9:00",
        ],
    )
    .await;
    assert_ne!(bad.code, 0, "{}", bad.output());
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.output());
    assert_eq!(count_messages(&t).await, 0);

    let run = send(
        &t.base,
        &seed.token,
        &[
            "--template",
            &seed.template_id,
            "--csv",
            csv_arg,
            "--at",
            &at,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.output());
    let scheduled: Vec<String> = t
        .sql_strings("SELECT status FROM messages ORDER BY phone_number")
        .await;
    assert_eq!(scheduled, ["scheduled", "scheduled"]);
    t.drain().await;
    assert_eq!(
        t.sql_i64("SELECT count(*) FROM messages WHERE status = 'scheduled'")
            .await,
        2,
        "not sent before their time"
    );
}
