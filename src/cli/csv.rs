//! A small CSV reader and writer for `plantilla send --csv`: RFC 4180 plus what spreadsheets
//! write (LF or CRLF line ends, a UTF-8 byte order mark). Quoted fields may hold commas,
//! newlines and doubled quotes. Written here rather than taken from a crate because this is
//! all the client needs.

use std::fmt;

/// One record and the line of the file it starts on (1-based; a quoted field may span lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

/// Parses a whole file. Empty lines are skipped; a final line end is optional.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    // The field began with a quote (so it is not empty even if it has no characters).
    let mut quoted = false;
    // Inside a quoted field, before its closing quote.
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut quote_line = 1;
    let mut chars = text.chars().peekable();

    let end_record = |fields: &mut Vec<String>,
                      field: &mut String,
                      quoted: &mut bool,
                      records: &mut Vec<Record>,
                      record_line: usize| {
        let blank = fields.is_empty() && field.is_empty() && !*quoted;
        fields.push(std::mem::take(field));
        *quoted = false;
        let fields = std::mem::take(fields);
        if !blank {
            records.push(Record {
                line: record_line,
                fields,
            });
        }
    };

    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(
                    &mut fields,
                    &mut field,
                    &mut quoted,
                    &mut records,
                    record_line,
                );
                line += 1;
                record_line = line;
            }
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                in_quotes = true;
                quote_line = line;
            }
            c if quoted => {
                return Err(CsvError {
                    line,
                    message: format!(
                        "{c:?} after a closing quote; a quoted field must end at a comma or the end of the line (write a quote inside quotes as \"\")"
                    ),
                });
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(CsvError {
            line: quote_line,
            message: "a quoted field is never closed".into(),
        });
    }
    if !fields.is_empty() || !field.is_empty() || quoted {
        end_record(
            &mut fields,
            &mut field,
            &mut quoted,
            &mut records,
            record_line,
        );
    }
    Ok(records)
}

/// Appends one record, quoting the fields that need it, and a line end.
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let f = f.as_ref();
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|r| r.fields).collect()
    }

    #[test]
    fn reads_what_spreadsheets_write() {
        assert_eq!(
            fields("a,b\r\n1,2\r\n"),
            vec![vec!["a", "b"], vec!["1", "2"]]
        );
        assert_eq!(
            fields("\u{feff}to,name\n5071,Ana"),
            vec![vec!["to", "name"], vec!["5071", "Ana"]]
        );
        assert_eq!(
            fields("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\n"),
            vec![
                vec!["a", "b", "c"],
                vec!["x, y", "say \"hi\"", "two\r\nlines"]
            ]
        );
        assert_eq!(
            fields("a,,\n,\"\",z\n"),
            vec![vec!["a", "", ""], vec!["", "", "z"]]
        );
        assert_eq!(fields("ñandú,日本\n"), vec![vec!["ñandú", "日本"]]);
        // Blank lines are skipped, a line holding only "" is a record with one empty field.
        assert_eq!(
            fields("a\n\n\r\nb\n\"\"\n"),
            vec![vec!["a"], vec!["b"], vec![""]]
        );
        assert!(fields("").is_empty());
        // A quote inside an unquoted field is kept as it is.
        assert_eq!(fields("5\"7,b"), vec![vec!["5\"7", "b"]]);
    }

    #[test]
    fn records_know_their_first_line() {
        let r = parse("h1,h2\n\"multi\nline\",x\nlast,y").unwrap();
        assert_eq!(r.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn broken_quotes_are_errors_with_their_line() {
        let e = parse("a,b\n\"open,b\nc,d\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse("a,b\n\"x\"y,b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("after a closing quote"), "{e}");
    }

    #[test]
    fn writing_then_reading_round_trips() {
        let rows = vec![
            vec!["row", "to", "error"],
            vec!["1", "507", "a, b"],
            vec!["2", "", "said \"no\"\nthen left"],
        ];
        let mut out = String::new();
        for r in &rows {
            write_record(&mut out, r);
        }
        assert_eq!(fields(&out), rows);
    }
}
