//! `plantilla send --csv`'s files, read and written with the `csv` crate: RFC 4180 plus what
//! spreadsheets write (LF or CRLF line ends, a UTF-8 byte order mark), quoted fields holding
//! commas, newlines and doubled quotes. Kept here by hand, because the crate does neither: the
//! line each record starts on (it counts neither skipped blank lines nor CRLF as it reports
//! them), and refusing a broken quote (it reads `"x"y` as `xy`, an unclosed quote to the end of
//! the file, which would silently drop every row after it).

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
    check_quotes(text)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    // Where the last record started, and its line.
    let (mut counted, mut line) = (0, 1);
    for record in reader.records() {
        let record = record.map_err(|e| CsvError {
            line: e.position().map_or(line, |p| p.line() as usize),
            message: e.to_string(),
        })?;
        // The crate's offset is just after the previous record's first line-end byte, before
        // any blank lines: the record begins at the first byte that ends no line.
        let from = record.position().map_or(counted, |p| p.byte() as usize);
        let start = from
            + text[from..]
                .bytes()
                .take_while(|b| *b == b'\r' || *b == b'\n')
                .count();
        line += line_ends(&text[counted..start]);
        counted = start;
        records.push(Record {
            line,
            fields: record.iter().map(str::to_string).collect(),
        });
    }
    Ok(records)
}

/// How many lines end in `text`: at LF, CRLF or a lone CR.
fn line_ends(text: &str) -> usize {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, b)| *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

/// Refuses what the crate would read leniently: text after a closing quote, and a quote never
/// closed.
fn check_quotes(text: &str) -> Result<(), CsvError> {
    #[derive(PartialEq)]
    enum At {
        FieldStart,
        Unquoted,
        Quoted,
        Closed,
    }
    let mut at = At::FieldStart;
    let (mut line, mut quote_line) = (1, 1);
    let mut chars = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .peekable();
    while let Some(c) = chars.next() {
        at = match (at, c) {
            (At::Quoted, '"') if chars.next_if_eq(&'"').is_some() => At::Quoted,
            (At::Quoted, '"') => At::Closed,
            (At::Quoted, _) => At::Quoted,
            (_, ',' | '\r' | '\n') => At::FieldStart,
            (At::FieldStart, '"') => {
                quote_line = line;
                At::Quoted
            }
            (At::Closed, c) => {
                return Err(CsvError {
                    line,
                    message: format!(
                        "{c:?} after a closing quote; a quoted field must end at a comma or the end of the line (write a quote inside quotes as \"\")"
                    ),
                });
            }
            _ => At::Unquoted,
        };
        if c == '\n' || (c == '\r' && chars.peek() != Some(&'\n')) {
            line += 1;
        }
    }
    if at == At::Quoted {
        return Err(CsvError {
            line: quote_line,
            message: "a quoted field is never closed".into(),
        });
    }
    Ok(())
}

/// A CSV writer over `out`: fields quoted when they need it, records ended by LF.
pub fn writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out)
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
        let lines =
            |text: &str| -> Vec<usize> { parse(text).unwrap().iter().map(|r| r.line).collect() };
        assert_eq!(lines("h1,h2\n\"multi\nline\",x\nlast,y"), vec![1, 2, 4]);
        // CRLF, blank lines, a byte order mark and a lone CR.
        assert_eq!(
            lines("\u{feff}h\r\n\r\na\r\n\"b\r\nc\"\r\n\nd\re"),
            vec![1, 3, 4, 7, 8]
        );
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
        let mut out = writer(Vec::new());
        for r in &rows {
            out.write_record(r).unwrap();
        }
        let out = String::from_utf8(out.into_inner().unwrap()).unwrap();
        assert_eq!(
            out,
            "row,to,error\n1,507,\"a, b\"\n2,,\"said \"\"no\"\"\nthen left\"\n"
        );
        assert_eq!(fields(&out), rows);
    }
}
