//! Recipients: upsert one or a batch (with the consent each gave: topics, source and
//! time), export everything held about one, erase one.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::JsonBody;
use super::rows::{Naming, Row, import_rows};
use crate::domain::EmailAddress;
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::import::ImportKind;
use crate::store::RecipientExport;

/// Consent carried by a recipient object, taken out before the importer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consent {
    topics: Vec<String>,
    source: String,
    at: i64,
}

/// Fields of a recipient object that the API reads itself; the importer reads the rest.
const CONSENT_FIELDS: [&str; 3] = ["topics", "consent_source", "consented_at"];

#[derive(Debug, Serialize)]
pub(crate) struct Upserted {
    inserted: u64,
    updated: u64,
    consents_added: u64,
}

pub(crate) async fn upsert_one(
    State(state): State<AppState>,
    JsonBody(row): JsonBody<Row>,
) -> Result<Json<Upserted>, HttpError> {
    upsert(&state, vec![row], Naming::Single).await.map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    recipients: Vec<Row>,
}

pub(crate) async fn upsert_batch(
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<Batch>,
) -> Result<Json<Upserted>, HttpError> {
    if batch.recipients.is_empty() {
        return Err(HttpError::field("recipients", "is empty"));
    }
    upsert(&state, batch.recipients, Naming::List("recipients"))
        .await
        .map(Json)
}

async fn upsert(
    state: &AppState,
    mut rows: Vec<Row>,
    naming: Naming,
) -> Result<Upserted, HttpError> {
    let consents = take_consents(&mut rows, naming)?;
    let report = import_rows(&state.store, ImportKind::Recipients, &rows, naming).await?;
    let mut consents_added = 0;
    for (row, consent) in rows.iter().zip(consents) {
        let Some(consent) = consent else { continue };
        let email = row
            .get("email")
            .and_then(Value::as_str)
            .and_then(|e| EmailAddress::parse(e).ok())
            .ok_or_else(|| HttpError::Internal("an imported row lost its address".into()))?;
        consents_added += state
            .store
            .grant_consents(&email.key(), &consent.topics, &consent.source, consent.at)
            .await?;
    }
    Ok(Upserted {
        inserted: report.inserted,
        updated: report.updated,
        consents_added,
    })
}

/// Removes the consent fields from every row; all rows' problems at once.
fn take_consents(rows: &mut [Row], naming: Naming) -> Result<Vec<Option<Consent>>, HttpError> {
    let mut errors = FieldErrors::new();
    let mut consents = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter_mut().enumerate() {
        let fields: Vec<(&str, Value)> = CONSENT_FIELDS
            .iter()
            .filter_map(|&name| row.remove(name).map(|value| (name, value)))
            .collect();
        match consent(&fields) {
            Ok(consent) => consents.push(consent),
            Err((field, message)) => {
                add_error(&mut errors, &naming.field(index, Some(field)), message)
            }
        }
    }
    if errors.is_empty() {
        Ok(consents)
    } else {
        Err(HttpError::invalid(errors))
    }
}

const TOPICS_SHAPE: &str =
    "must be an array of topic names or one string of names separated by ';'";
const NUL: &str = "contains a NUL character (U+0000), which cannot be stored";

fn consent(fields: &[(&str, Value)]) -> Result<Option<Consent>, (&'static str, String)> {
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let topics = topics(get("topics")).map_err(|message| ("topics", message))?;
    let source = match get("consent_source") {
        None | Some(Value::Null) => "api".to_string(),
        Some(Value::String(s)) if s.contains('\0') => return Err(("consent_source", NUL.into())),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err(("consent_source", "must be a non-empty string".into())),
    };
    let at = match get("consented_at") {
        None | Some(Value::Null) => crate::time::now(),
        Some(Value::Number(n)) => n.as_i64().ok_or((
            "consented_at",
            "must be unix seconds or an RFC 3339 time".to_string(),
        ))?,
        Some(Value::String(s)) => {
            crate::time::parse_timestamp(s).map_err(|e| ("consented_at", e))?
        }
        Some(_) => {
            return Err((
                "consented_at",
                "must be unix seconds or an RFC 3339 time".into(),
            ));
        }
    };
    Ok((!topics.is_empty()).then_some(Consent { topics, source, at }))
}

/// Topic names as an array (`["news", "offers"]`) or, as in an import file, one
/// string separated by `;` (`"news;offers"`).
fn topics(value: Option<&Value>) -> Result<Vec<String>, String> {
    let names: Vec<&str> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => text.split(';').filter(|t| !t.trim().is_empty()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item.as_str() {
                Some(topic) if !topic.trim().is_empty() => Ok(topic),
                _ => Err(TOPICS_SHAPE.to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TOPICS_SHAPE.into()),
    };
    if names.iter().any(|name| name.contains('\0')) {
        return Err(NUL.into());
    }
    Ok(names.iter().map(|name| name.trim().to_string()).collect())
}

fn parse_email(text: &str) -> Result<EmailAddress, HttpError> {
    EmailAddress::parse(text).map_err(|e| HttpError::field("email", e.to_string()))
}

pub(crate) async fn export(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Json<RecipientExport>, HttpError> {
    let email = parse_email(&email)?;
    state
        .store
        .export_recipient(&email)
        .await?
        .map(Json)
        .ok_or_else(|| HttpError::NotFound(format!("no recipient '{email}'")))
}

pub(crate) async fn erase(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let email = parse_email(&email)?;
    if !state.store.erase_recipient(&email).await? {
        return Err(HttpError::NotFound(format!("no recipient '{email}'")));
    }
    tracing::info!("recipient erased on request; a hashed suppression remains");
    Ok(Json(json!({
        "erased": true,
        "suppressed": true,
        "note": "personal data deleted; the address's SHA-256 stays on the suppression list so it is never mailed again"
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: Value) -> Row {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn consent_fields_are_taken_out_and_checked() {
        let mut rows = vec![
            row(
                json!({"email": "a@example.com", "topics": ["news"], "consent_source": "signup form", "consented_at": "2024-05-01T10:00:00Z"}),
            ),
            row(json!({"email": "b@example.com"})),
        ];
        let consents = take_consents(&mut rows, Naming::List("recipients")).unwrap();
        assert_eq!(
            consents[0],
            Some(Consent {
                topics: vec!["news".into()],
                source: "signup form".into(),
                at: 1_714_557_600
            })
        );
        assert_eq!(consents[1], None);
        assert!(
            !rows[0].contains_key("topics"),
            "the importer never sees consent fields"
        );

        let mut bad = vec![row(
            json!({"email": "a@example.com", "topics": 5, "consented_at": "soon"}),
        )];
        match take_consents(&mut bad, Naming::List("recipients")).unwrap_err() {
            HttpError::Invalid { fields, .. } => {
                assert!(fields.contains_key("recipients[0].topics"), "{fields:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn topics_are_an_array_or_a_semicolon_separated_string() {
        let expected = vec!["news".to_string(), "offers".to_string()];
        assert_eq!(
            topics(Some(&json!(["news", "offers"]))),
            Ok(expected.clone())
        );
        assert_eq!(topics(Some(&json!("news; offers;"))), Ok(expected));
        assert_eq!(topics(None), Ok(vec![]));
        assert!(
            topics(Some(&json!("news\u{0}")))
                .unwrap_err()
                .contains("NUL")
        );
        assert!(topics(Some(&json!({"a": 1}))).is_err());
    }
}
