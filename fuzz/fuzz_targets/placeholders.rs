//! Placeholder parsing on arbitrary text, and a template's params and validation on
//! arbitrary content (header, body, footer, buttons), with the send-side functions that use
//! them (param checks, rendering, Cloud API components).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use plantilla::domain::template::{
    Button, Header, TemplateContent, check_params, cloud_components, parse_placeholders, render,
};
use plantilla::domain::template_send::{check_send, preview};

#[derive(Arbitrary, Debug)]
enum HeaderIn {
    Text(String),
    Image(Option<String>),
    Video(Option<String>),
    Gif(Option<String>),
    Document(Option<String>),
    Location(Option<String>),
}

#[derive(Arbitrary, Debug)]
enum ButtonIn {
    QuickReply(String),
    Url(String, String),
    PhoneNumber(String, String),
    CopyCode(String),
    Otp(String),
    Flow(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    header: Option<HeaderIn>,
    body: String,
    footer: Option<String>,
    buttons: Vec<ButtonIn>,
    params: Vec<(String, String)>,
}

fn valid_name(name: &str) -> bool {
    let digits = name.bytes().all(|b| b.is_ascii_digit());
    if digits {
        return !name.is_empty() && (name.len() == 1 || !name.starts_with('0'));
    }
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fuzz_target!(|input: Input| {
    // Placeholders of free text.
    let params: BTreeMap<String, String> = input.params.into_iter().collect();
    if let Ok(found) = parse_placeholders(&input.text) {
        assert!(found.len() <= input.text.matches("{{").count());
        for p in &found {
            assert!(valid_name(p.name()), "{:?}", p.name());
            assert_eq!(p.to_string(), format!("{{{{{}}}}}", p.name()));
        }
    }
    assert_eq!(render(&input.text, &BTreeMap::new()), input.text);
    let _ = render(&input.text, &params);

    // A template of arbitrary content.
    let header = input.header.map(|h| match h {
        HeaderIn::Text(text) => Header::Text { text },
        HeaderIn::Image(example) => Header::media("IMAGE", example).unwrap(),
        HeaderIn::Video(example) => Header::media("VIDEO", example).unwrap(),
        HeaderIn::Gif(example) => Header::media("GIF", example).unwrap(),
        HeaderIn::Document(example) => Header::media("DOCUMENT", example).unwrap(),
        HeaderIn::Location(example) => Header::Location { example },
    });
    let buttons = input
        .buttons
        .into_iter()
        .take(10)
        .map(|b| match b {
            ButtonIn::QuickReply(text) => Button::QuickReply { text },
            ButtonIn::Url(text, url) => Button::Url { text, url },
            ButtonIn::PhoneNumber(text, phone_number) => Button::PhoneNumber { text, phone_number },
            ButtonIn::CopyCode(example) => Button::CopyCode { example },
            ButtonIn::Otp(otp_type) => Button::Otp {
                otp_type,
                text: None,
            },
            ButtonIn::Flow(text) => Button::Flow {
                text,
                flow_id: None,
                flow_action: None,
                navigate_screen: None,
            },
        })
        .collect();
    let content = TemplateContent {
        header,
        body: input.body,
        footer: input.footer,
        buttons,
        ..Default::default()
    };
    let required = content.params();
    for name in &required {
        assert!(valid_name(name), "{name:?}");
    }
    let mut distinct = required.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), required.len(), "params are listed once");

    let valid = content.validate();
    if let Err(e) = &valid {
        assert!(!e.is_empty());
    }
    // Sending: the params check, then the components (also for content that validate
    // refused: stored templates come from Meta too).
    match check_params(&required, &params) {
        Ok(()) => {
            for name in &required {
                assert!(params.contains_key(name));
            }
        }
        Err(problems) => assert!(!problems.detail().is_empty()),
    }
    // The whole send check (reserved keys too) never panics; every refusal says why.
    if let Err(problems) = check_send(&content, &params, 0) {
        assert!(!problems.missing.is_empty() || !problems.invalid.is_empty());
        assert_eq!(problems.missing.len(), problems.missing_detail.len());
    }
    let _ = preview(&content, &params);
    let components = cloud_components(&content, &params);
    assert!(components.len() <= 2 + content.buttons.len());
});
