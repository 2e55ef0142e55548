//! Templates on disk (one directory per template, see templates/README.md) and preview
//! files.

use std::path::{Path, PathBuf};

use super::{RenderError, RenderedMessage};
use crate::store::NewTemplate;

/// Reads `subject.txt`, `preheader.txt?`, `body.html` or `body.mjml`, `text.txt?` from
/// `dir`; the directory's name is the template's name.
pub fn load_template_dir(dir: impl AsRef<Path>) -> Result<NewTemplate, RenderError> {
    let dir = dir.as_ref();
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(dir, "has no usable name"))?;
    let subject = read(dir, "subject.txt")?.ok_or_else(|| invalid(dir, "has no subject.txt"))?;
    let html = match (read(dir, "body.html")?, read(dir, "body.mjml")?) {
        (Some(html), None) | (None, Some(html)) => html,
        (Some(_), Some(_)) => return Err(invalid(dir, "has both body.html and body.mjml")),
        (None, None) => return Err(invalid(dir, "has neither body.html nor body.mjml")),
    };
    Ok(NewTemplate {
        name: name.to_string(),
        subject: subject.trim().to_string(),
        preheader: read(dir, "preheader.txt")?.map(|p| p.trim().to_string()),
        html,
        text: read(dir, "text.txt")?,
    })
}

/// Every template under `root`: each subdirectory holding a `subject.txt`, by name.
pub fn load_all(root: impl AsRef<Path>) -> Result<Vec<NewTemplate>, RenderError> {
    let root = root.as_ref();
    let entries = std::fs::read_dir(root).map_err(|e| RenderError::io(root, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| RenderError::io(root, e))?.path();
        if path.is_dir() && path.join("subject.txt").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    dirs.iter().map(load_template_dir).collect()
}

fn read(dir: &Path, file: &str) -> Result<Option<String>, RenderError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RenderError::io(path, e)),
    }
}

fn invalid(dir: &Path, reason: &str) -> RenderError {
    RenderError::TemplateDir {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The files [`write_preview`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewFiles {
    pub eml: PathBuf,
    pub html: PathBuf,
    pub text: PathBuf,
}

/// Writes `<stem>.eml`, `<stem>.html` and `<stem>.txt` into `dir` (created if needed),
/// the stem derived from the Message-ID (`<7.42.mailcast@…>` → `7.42`).
pub fn write_preview(
    rendered: &RenderedMessage,
    dir: impl AsRef<Path>,
) -> Result<PreviewFiles, RenderError> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| RenderError::io(dir, e))?;
    let stem = preview_stem(&rendered.message_id);
    let files = PreviewFiles {
        eml: dir.join(format!("{stem}.eml")),
        html: dir.join(format!("{stem}.html")),
        text: dir.join(format!("{stem}.txt")),
    };
    write(&files.eml, &rendered.raw)?;
    write(&files.html, rendered.html.as_bytes())?;
    write(&files.text, rendered.text.as_bytes())?;
    Ok(files)
}

fn preview_stem(message_id: &str) -> String {
    let local = message_id
        .trim_matches(['<', '>'])
        .split('@')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".mailcast");
    let safe: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "message".to_string()
    } else {
        safe
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), RenderError> {
    std::fs::write(path, bytes).map_err(|e| RenderError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_stem_comes_from_the_message_id() {
        assert_eq!(preview_stem("<7.42.mailcast@lists.example>"), "7.42");
        assert_eq!(preview_stem("<../../etc@x>"), ".._.._etc");
        assert_eq!(preview_stem(""), "message");
    }

    #[test]
    fn a_template_directory_needs_a_subject_and_one_body() {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = dir.path().join("promo");
        std::fs::create_dir(&t).expect("mkdir");
        assert!(load_template_dir(&t).is_err());
        std::fs::write(t.join("subject.txt"), "Hi {{ recipient.first_name }}\n").expect("write");
        std::fs::write(t.join("body.mjml"), "<mjml></mjml>").expect("write");
        let loaded = load_template_dir(&t).expect("loads");
        assert_eq!(loaded.name, "promo");
        assert_eq!(loaded.subject, "Hi {{ recipient.first_name }}");
        assert_eq!(loaded.preheader, None);
        std::fs::write(t.join("body.html"), "<p>x</p>").expect("write");
        assert!(load_template_dir(&t).is_err());
    }
}
