//! Streams of rows from CSV or JSON Lines files, each with the physical line it
//! starts on. Only one row is held at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ImportError, RowError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, ImportError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::JsonLines),
            _ => Err(ImportError::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// One value as the file holds it: CSV cells are text, JSON values keep their type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> Cell<'a> {
    /// The text of a CSV cell or of a JSON string.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Cell::Text(text) => Some(text),
            Cell::Json(Value::String(text)) => Some(text),
            Cell::Json(_) => None,
        }
    }

    /// Empty cells, blank strings and JSON `null` count as "not given".
    fn is_blank(self) -> bool {
        match self.as_str() {
            Some(text) => text.trim().is_empty(),
            None => matches!(self, Cell::Json(Value::Null)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Cells<'a> {
    Csv {
        header: &'a [String],
        values: &'a csv::StringRecord,
    },
    Json(&'a Map<String, Value>),
}

/// A row that is well-formed as CSV or JSON; its values are not checked yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub line: u64,
    cells: Cells<'a>,
}

impl<'a> Record<'a> {
    /// The value of column `name`; None when absent or blank.
    pub fn get(&self, name: &str) -> Option<Cell<'a>> {
        let cell = match self.cells {
            Cells::Csv { header, values } => header
                .iter()
                .position(|h| h == name)
                .and_then(|i| values.get(i))
                .map(Cell::Text),
            Cells::Json(map) => map.get(name).map(Cell::Json),
        }?;
        (!cell.is_blank()).then_some(cell)
    }

    /// Every non-blank value with its column name, in file order.
    pub fn cells(&self) -> Box<dyn Iterator<Item = (&'a str, Cell<'a>)> + 'a> {
        let cells: Box<dyn Iterator<Item = (&'a str, Cell<'a>)>> = match self.cells {
            Cells::Csv { header, values } => Box::new(
                header
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(Cell::Text)),
            ),
            Cells::Json(map) => Box::new(map.iter().map(|(k, v)| (k.as_str(), Cell::Json(v)))),
        };
        Box::new(cells.filter(|(_, cell)| !cell.is_blank()))
    }
}

pub(crate) enum Step<'a> {
    Row(Record<'a>),
    Bad(RowError),
}

/// Where rows come from: a file, or objects already parsed (the API's batches), which
/// are numbered as if they were the lines of a JSON Lines file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    File(&'a Path),
    Objects(&'a [Map<String, Value>]),
}

/// The rows of one import file or batch of objects.
pub(crate) struct Rows<'a> {
    path: PathBuf,
    total_bytes: u64,
    source: Source<'a>,
}

enum Source<'a> {
    Csv(CsvRows),
    Json(JsonRows),
    Objects(ObjectRows<'a>),
}

impl<'a> Rows<'a> {
    pub fn of(input: Input<'a>) -> Result<Rows<'a>, ImportError> {
        match input {
            Input::File(path) => Rows::open(path),
            Input::Objects(rows) => Ok(Rows {
                path: PathBuf::new(),
                total_bytes: 0,
                source: Source::Objects(ObjectRows { rows, next: 0 }),
            }),
        }
    }

    pub fn open(path: &Path) -> Result<Rows<'a>, ImportError> {
        let format = Format::of(path)?;
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let source = match format {
            Format::Csv => Source::Csv(CsvRows::open(path, file)?),
            Format::JsonLines => Source::Json(JsonRows::new(file)),
        };
        Ok(Rows {
            path: path.to_path_buf(),
            total_bytes,
            source,
        })
    }

    /// A CSV header must name every required column; JSON Lines rows are checked
    /// one by one instead.
    pub fn require_columns(&self, required: &[&str]) -> Result<(), ImportError> {
        let Source::Csv(csv) = &self.source else {
            return Ok(());
        };
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| !csv.header.iter().any(|h| h == name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let problem = format!(
            "the header lacks required column(s): {}",
            missing.join(", ")
        );
        Err(ImportError::header(&self.path, problem))
    }

    pub fn next(&mut self) -> Result<Option<Step<'_>>, ImportError> {
        let result = match &mut self.source {
            Source::Csv(csv) => csv.next(),
            Source::Json(json) => json.next(),
            Source::Objects(objects) => Ok(objects.next()),
        };
        result.map_err(|e| ImportError::io(&self.path, e))
    }

    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv(csv) => csv.reader.position().byte(),
            Source::Json(json) => json.bytes,
            Source::Objects(_) => 0,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The line the last row returned started on.
    pub fn line(&self) -> u64 {
        match &self.source {
            Source::Csv(csv) => csv.line,
            Source::Json(json) => json.line,
            Source::Objects(objects) => objects.next as u64,
        }
    }
}

struct CsvRows {
    reader: csv::Reader<LineTracker<File>>,
    header: Vec<String>,
    record: csv::StringRecord,
    line: u64,
}

impl CsvRows {
    fn open(path: &Path, file: File) -> Result<CsvRows, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(LineTracker::new(file));
        let header: Vec<String> = match reader.headers() {
            Ok(header) => header.iter().map(|h| h.trim().to_string()).collect(),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                return Err(ImportError::header(path, "the header is not valid UTF-8"));
            }
            Err(e) => return Err(ImportError::io(path, e.into())),
        };
        check_header(path, &header)?;
        Ok(CsvRows {
            reader,
            header,
            record: csv::StringRecord::new(),
            line: 1,
        })
    }

    fn next(&mut self) -> io::Result<Option<Step<'_>>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) if is_blank_record(&self.record) => continue,
                Ok(true) => {
                    let start = self.record.position().map_or(0, |p| p.byte());
                    self.line = self.reader.get_mut().line_at(start);
                    return Ok(Some(self.step()));
                }
                Err(error) => return self.utf8_error(error).map(Some),
            }
        }
    }

    fn step(&self) -> Step<'_> {
        let (expected, found) = (self.header.len(), self.record.len());
        if expected != found {
            return Step::Bad(RowError {
                line: self.line,
                column: None,
                reason: format!("expected {expected} fields as in the header, found {found}"),
            });
        }
        Step::Row(Record {
            line: self.line,
            cells: Cells::Csv {
                header: &self.header,
                values: &self.record,
            },
        })
    }

    /// A row that is not UTF-8 is rejected; any other CSV error is fatal.
    fn utf8_error(&mut self, error: csv::Error) -> io::Result<Step<'static>> {
        let (start, field) = match error.kind() {
            csv::ErrorKind::Utf8 { pos, err } => {
                (pos.as_ref().map_or(0, |p| p.byte()), err.field())
            }
            _ => return Err(error.into()),
        };
        self.line = self.reader.get_mut().line_at(start);
        let column = self.header.get(field).cloned();
        Ok(Step::Bad(RowError {
            line: self.line,
            column,
            reason: "invalid UTF-8".into(),
        }))
    }
}

fn is_blank_record(record: &csv::StringRecord) -> bool {
    record.len() == 1 && record[0].trim().is_empty()
}

fn check_header(path: &Path, header: &[String]) -> Result<(), ImportError> {
    if header.is_empty() {
        return Err(ImportError::header(
            path,
            "no header: a CSV file starts with a line of column names",
        ));
    }
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            let problem = format!("column {} has no name", i + 1);
            return Err(ImportError::header(path, problem));
        }
        if name.contains('\0') {
            let problem = format!("column {} has a NUL character (U+0000) in its name", i + 1);
            return Err(ImportError::header(path, problem));
        }
        if header[..i].contains(name) {
            let problem = format!("column '{name}' appears more than once");
            return Err(ImportError::header(path, problem));
        }
    }
    Ok(())
}

/// Remembers the bytes the CSV parser has read ahead, so that a record's byte offset
/// can be turned into the physical line it starts on. (The parser's own line count
/// lags behind blank lines and CRLF endings.)
struct LineTracker<R> {
    inner: R,
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_start: u64,
    /// Bytes of the window already counted, and the line feeds in the file up to there.
    counted: usize,
    newlines: u64,
}

/// Counted bytes are dropped from the window once there are this many.
const COMPACT_AT: usize = 1 << 16;

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            window: Vec::new(),
            window_start: 0,
            counted: 0,
            newlines: 0,
        }
    }

    /// The 1-based line of the first byte at or after `offset` that is not a line
    /// break. Offsets must not decrease from call to call.
    fn line_at(&mut self, offset: u64) -> u64 {
        let target = usize::try_from(offset.saturating_sub(self.window_start))
            .unwrap_or(usize::MAX)
            .clamp(self.counted, self.window.len());
        self.newlines += count_newlines(&self.window[self.counted..target]);
        self.counted = target;
        let breaks = self.window[target..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .filter(|b| **b == b'\n')
            .count();
        if self.counted >= COMPACT_AT {
            self.window.drain(..self.counted);
            self.window_start += self.counted as u64;
            self.counted = 0;
        }
        self.newlines + breaks as u64 + 1
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

struct JsonRows {
    reader: BufReader<File>,
    buffer: Vec<u8>,
    object: Map<String, Value>,
    line: u64,
    bytes: u64,
}

impl JsonRows {
    fn new(file: File) -> JsonRows {
        JsonRows {
            reader: BufReader::with_capacity(1 << 16, file),
            buffer: Vec::new(),
            object: Map::new(),
            line: 0,
            bytes: 0,
        }
    }

    fn next(&mut self) -> io::Result<Option<Step<'_>>> {
        loop {
            self.buffer.clear();
            let n = self.reader.read_until(b'\n', &mut self.buffer)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.bytes += n as u64;
            let mut text = self.buffer.trim_ascii();
            if self.line == 1 {
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.is_empty() {
                continue;
            }
            let line = self.line;
            return Ok(Some(match parse_object(text) {
                Ok(object) => {
                    self.object = object;
                    Step::Row(Record {
                        line,
                        cells: Cells::Json(&self.object),
                    })
                }
                Err(reason) => Step::Bad(RowError {
                    line,
                    column: None,
                    reason,
                }),
            }));
        }
    }
}

struct ObjectRows<'a> {
    rows: &'a [Map<String, Value>],
    next: usize,
}

impl<'a> ObjectRows<'a> {
    fn next(&mut self) -> Option<Step<'a>> {
        let object = self.rows.get(self.next)?;
        self.next += 1;
        Some(Step::Row(Record {
            line: self.next as u64,
            cells: Cells::Json(object),
        }))
    }
}

fn parse_object(text: &[u8]) -> Result<Map<String, Value>, String> {
    if std::str::from_utf8(text).is_err() {
        return Err("invalid UTF-8".into());
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("expected a JSON object".into()),
        Err(e) => Err(format!("malformed JSON: {}", json_message(&e))),
    }
}

/// serde_json's message without its "at line 1 column 9" suffix, with the column
/// kept for long lines.
pub(crate) fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", error.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// (line, first value or error) for every row.
    fn lines(path: &Path) -> Vec<(u64, String)> {
        let mut rows = Rows::open(path).unwrap();
        let mut seen = Vec::new();
        while let Some(step) = rows.next().unwrap() {
            seen.push(match step {
                Step::Row(record) => {
                    let first = record.cells().next().map(|(_, c)| format!("{c:?}"));
                    (record.line, first.unwrap_or_default())
                }
                Step::Bad(error) => (error.line, error.to_string()),
            });
        }
        seen
    }

    #[test]
    fn csv_rows_carry_their_physical_line() {
        let text = b"\xEF\xBB\xBFa,b\r\nx,1\r\n\r\n\"multi\nline\",2\r\ny,3\r\nshort\r\nz,4";
        let (_dir, path) = write("t.csv", text);
        let found = lines(&path);
        let numbers: Vec<u64> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(numbers, [2, 4, 6, 7, 8], "{found:?}");
        assert!(
            found[3]
                .1
                .contains("expected 2 fields as in the header, found 1")
        );
    }

    #[test]
    fn csv_row_with_invalid_utf8_is_rejected_alone() {
        let (_dir, path) = write("t.csv", b"a,b\nok,1\nbad\xFF,2\nok,3\n");
        let found = lines(&path);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[1], (3, "line 3: a: invalid UTF-8".to_string()));
        assert_eq!(found[2].0, 4);
    }

    #[test]
    fn csv_header_must_be_usable() {
        let (_dir, path) = write("t.csv", b"email,name,email\n");
        let error = Rows::open(&path).err().unwrap().to_string();
        assert!(
            error.contains("line 1: column 'email' appears more than once"),
            "{error}"
        );
        let (_dir, path) = write("t.csv", b"name,city\n");
        let rows = Rows::open(&path).unwrap();
        let error = rows.require_columns(&["email"]).unwrap_err().to_string();
        assert!(error.contains("lacks required column(s): email"), "{error}");
        let (_dir, path) = write("t.csv", b"");
        assert!(Rows::open(&path).is_err());
    }

    #[test]
    fn json_lines_skip_blank_lines_and_reject_non_objects() {
        let text = b"{\"a\":1}\n\n  \n[1]\n{\"a\":\n\xFF\n{\"a\":2}\r\n";
        let (_dir, path) = write("t.ndjson", text);
        let found = lines(&path);
        let numbers: Vec<u64> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(numbers, [1, 4, 5, 6, 7], "{found:?}");
        assert!(found[1].1.ends_with("expected a JSON object"));
        assert!(
            found[2].1.contains("malformed JSON: EOF while parsing"),
            "{found:?}"
        );
        assert!(found[3].1.ends_with("invalid UTF-8"));
    }

    #[test]
    fn unknown_extension_and_missing_file_name_the_path() {
        let error = Rows::open(Path::new("people.xlsx"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("people.xlsx") && error.contains(".csv, .jsonl, .ndjson"));
        let error = Rows::open(Path::new("/no/such/people.csv"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(error, "file not found: /no/such/people.csv");
    }
}
