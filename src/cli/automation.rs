//! `mailcast automation load|list|show|pause|resume|stats`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::automation::definition::Definition;
use crate::automation::{
    describe_entry, describe_step, describe_trigger, event_text, load_automation,
};
use crate::store::{AutomationStats, Store, StoredAutomation};
use crate::time::format_timestamp;

#[derive(Debug, clap::Subcommand)]
pub enum AutomationCommand {
    /// Check and store automation files (TOML); a directory loads every *.toml in it.
    /// A changed file becomes a new version; running runs finish on theirs.
    Load {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Every automation with its status and version.
    List,
    /// An automation's trigger, entry rule, goal and steps.
    Show {
        name: String,
    },
    /// Start no new runs and move no running ones on until resumed.
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Per step: entered, waiting, sent, exited by the goal, converted, human opens
    /// and clicks.
    Stats {
        name: String,
    },
}

pub async fn run(store: &Store, command: AutomationCommand) -> anyhow::Result<ExitCode> {
    match command {
        AutomationCommand::Load { paths } => load(store, &paths).await,
        AutomationCommand::List => list(store).await,
        AutomationCommand::Show { name } => show(store, &name).await,
        AutomationCommand::Pause { name } => set_status(store, &name, "paused").await,
        AutomationCommand::Resume { name } => set_status(store, &name, "active").await,
        AutomationCommand::Stats { name } => stats(store, &name).await,
    }
}

/// Each file is loaded or refused on its own; the exit code says whether any was
/// refused.
async fn load(store: &Store, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut refused = 0;
    for file in files(paths)? {
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match load_automation(store, &source).await {
            Ok(loaded) if loaded.changed => println!(
                "{}: automation {} version {} loaded ({} steps)",
                file.display(),
                loaded.name,
                loaded.version,
                loaded.steps
            ),
            Ok(loaded) => println!(
                "{}: automation {} unchanged (version {})",
                file.display(),
                loaded.name,
                loaded.version
            ),
            Err(error) => {
                refused += 1;
                eprintln!("{}: refused, nothing stored:", file.display());
                for line in error.to_string().lines() {
                    eprintln!("  {line}");
                }
            }
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            found.extend(toml_files(path)?);
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn toml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

async fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let automations = store.automations().await?;
    if automations.is_empty() {
        println!("no automations (load one with `mailcast automation load FILE`)");
    }
    for automation in &automations {
        let stats = store.automation_stats(automation.id).await?;
        println!(
            "{:<24} {:<7} v{:<3} entered {:>7}  active {:>7}  converted {:>6}",
            automation.name,
            automation.status,
            automation.version,
            stats.entered,
            stats.active,
            stats.converted
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn find(store: &Store, name: &str) -> anyhow::Result<(StoredAutomation, Definition)> {
    let automation = store
        .automation_by_name(name)
        .await?
        .with_context(|| format!("no automation named '{name}'"))?;
    let definition = serde_json::from_str(&automation.definition)
        .with_context(|| format!("automation '{name}': stored definition unreadable"))?;
    Ok((automation, definition))
}

async fn show(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let (automation, definition) = find(store, name).await?;
    println!(
        "{} ({}, version {}, since {})",
        automation.name,
        automation.status,
        automation.version,
        format_timestamp(automation.updated_at)
    );
    if !definition.description.is_empty() {
        println!("  {}", definition.description);
    }
    println!("  trigger: {}", describe_trigger(&definition.trigger));
    println!("  entry:   {}", describe_entry(&definition.entry));
    if let Some(goal) = &definition.goal {
        println!("  goal:    {}", event_text(goal));
    }
    for (index, step) in definition.steps.iter().enumerate() {
        println!("  {}", describe_step(&definition, index, step));
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_status(store: &Store, name: &str, status: &str) -> anyhow::Result<ExitCode> {
    if !store.set_automation_status(name, status).await? {
        anyhow::bail!("no automation named '{name}'");
    }
    println!("automation {name} is {status}");
    Ok(ExitCode::SUCCESS)
}

async fn stats(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let (automation, definition) = find(store, name).await?;
    let stats = store.automation_stats(automation.id).await?;
    print!("{}", stats_table(&automation, &definition, &stats));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn stats_table(
    automation: &StoredAutomation,
    current: &Definition,
    stats: &AutomationStats,
) -> String {
    let ended: Vec<String> = stats
        .ended
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    let mut out = format!(
        "{}: entered {}, active {}, converted {}; ended: {}\n",
        automation.name,
        stats.entered,
        stats.active,
        stats.converted,
        if ended.is_empty() {
            "none".into()
        } else {
            ended.join(", ")
        }
    );
    out.push_str(&format!(
        "{:<4} {:<24} {:>8} {:>8} {:>8} {:>6} {:>9} {:>6} {:>7}\n",
        "ver", "step", "entered", "waiting", "sent", "goal", "converted", "opens", "clicks"
    ));
    for step in &stats.steps {
        let name = if step.version == automation.version {
            current
                .steps
                .get(step.step as usize)
                .map_or_else(|| format!("#{}", step.step + 1), |s| s.id.clone())
        } else {
            format!("#{}", step.step + 1)
        };
        out.push_str(&format!(
            "v{:<3} {:<24} {:>8} {:>8} {:>8} {:>6} {:>9} {:>6} {:>7}\n",
            step.version,
            name,
            step.entered,
            step.waiting,
            step.sent,
            step.exited_by_goal,
            step.converted,
            step.unique_human_opens,
            step.unique_human_clicks
        ));
    }
    out
}
