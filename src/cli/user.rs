//! `mailcast user create|list|remove`: the people who sign in to the dashboard.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::accounts::{Role, account_email, create_user};
use crate::store::Store;
use crate::time::format_timestamp;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (or reset one's role and password). Prints a one-time password
    /// unless --password-stdin gives one.
    Create {
        email: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Read the password from standard input (its first line) instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user with their role.
    List,
    /// Remove a user; their sessions end at once.
    Remove { email: String },
}

pub async fn run(store: &Store, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create {
            email,
            role,
            password_stdin,
        } => create(store, &email, role, password_stdin).await,
        UserCommand::List => list(store).await,
        UserCommand::Remove { email } => remove(store, &email).await,
    }
}

async fn create(
    store: &Store,
    email: &str,
    role: Role,
    password_stdin: bool,
) -> anyhow::Result<ExitCode> {
    let password = password_stdin.then(read_password).transpose()?;
    let (user, generated) = create_user(store, email, role, password).await?;
    println!("user {} ({})", user.email, user.role);
    if let Some(password) = generated {
        println!("password: {password}");
        println!("(shown once; sign in at /app/login)");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

async fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let users = store.users().await?;
    if users.is_empty() {
        println!("no users: create one with `mailcast user create EMAIL --role admin`");
    }
    for user in users {
        let since = format_timestamp(user.created_at);
        println!("{:<40} {:<7} since {since}", user.email, user.role);
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(store: &Store, email: &str) -> anyhow::Result<ExitCode> {
    let email = account_email(email)?;
    anyhow::ensure!(store.remove_user(&email).await?, "no user {email}");
    println!("removed {email}");
    Ok(ExitCode::SUCCESS)
}
