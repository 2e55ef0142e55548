//! One round over the mailbox, and the rounds of a long-running poller. A message is
//! removed only after the store said it holds it; a crash in between leaves it in the
//! mailbox, and reading it again finds the stored row by its digest.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::error::MailboxError;
use super::imap::Imap;
use super::pop3::Pop3;
use super::wire::Wire;
use super::{Fetched, Listed, Mailbox, PollReport, Protocol, Removal};
use crate::bounce::BounceSettings;
use crate::store::{IncomingBounce, Store, StoreError, StoredRaw};

/// Reads every message in the mailbox, stores and applies each, then removes it.
/// A store error ends the round with that message and those after it left in the
/// mailbox; those stored before it are removed.
pub async fn poll_once(
    store: &Store,
    settings: &BounceSettings,
    mailbox: &Mailbox,
) -> Result<PollReport, MailboxError> {
    let (_never, running) = watch::channel(false);
    poll_round(store, settings, mailbox, &running).await
}

/// A round every `interval` until `stop` completes; a round under way when it does
/// finishes the message it is on and ends its session properly. Stored bounces not yet
/// applied are applied at the start of each round.
pub async fn poll_forever(
    store: &Store,
    settings: &BounceSettings,
    mailbox: &Mailbox,
    interval: Duration,
    stop: impl Future<Output = ()>,
) {
    let (stopping, mut running) = watch::channel(false);
    let signal = async move {
        stop.await;
        let _ = stopping.send(true);
    };
    let rounds = async {
        loop {
            if let Err(error) = crate::bounce::process_unprocessed(store, settings).await {
                tracing::warn!(%error, "cannot apply stored bounces yet; trying again next round");
            }
            match poll_round(store, settings, mailbox, &running).await {
                Ok(report) if report == PollReport::default() => {
                    tracing::debug!(mailbox = %mailbox.url, "bounce mailbox: nothing new");
                }
                Ok(report) => {
                    tracing::info!(mailbox = %mailbox.url, %report, "bounce mailbox polled")
                }
                Err(error) => {
                    tracing::warn!(%error, "bounce mailbox: round failed; trying again in {interval:?}")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = running.wait_for(|stop| *stop) => return,
            }
        }
    };
    tokio::join!(signal, rounds);
}

async fn poll_round(
    store: &Store,
    settings: &BounceSettings,
    mailbox: &Mailbox,
    stopping: &watch::Receiver<bool>,
) -> Result<PollReport, MailboxError> {
    let mut client = Client::open(mailbox).await?;
    let mut round = Round::default();
    let read = read_all(store, settings, mailbox, &mut client, &mut round, stopping).await;
    if read.as_ref().is_err_and(|e| !e.leaves_session_usable()) {
        return read.map(|()| round.report);
    }
    let finished = client.finish().await;
    if finished.is_ok() {
        round.report.removed += round.pending;
    }
    read?;
    finished?;
    Ok(round.report)
}

#[derive(Default)]
struct Round {
    report: PollReport,
    /// Flagged for removal at the end of the session.
    pending: usize,
}

async fn read_all(
    store: &Store,
    settings: &BounceSettings,
    mailbox: &Mailbox,
    client: &mut Client,
    round: &mut Round,
    stopping: &watch::Receiver<bool>,
) -> Result<(), MailboxError> {
    for listed in client.messages().await? {
        if *stopping.borrow() {
            break;
        }
        let Some(raw) = fetch(mailbox, client, &listed, &mut round.report).await? else {
            continue;
        };
        round.report.fetched += 1;
        let stored = record(store, settings, &raw)
            .await
            .map_err(|source| MailboxError::Store {
                server: mailbox.url.to_string(),
                message: listed.id,
                source,
            })?;
        if stored.new {
            round.report.stored += 1;
        }
        match client.remove(listed.id, mailbox.move_to.as_deref()).await? {
            Removal::Done => round.report.removed += 1,
            Removal::Pending => round.pending += 1,
        }
    }
    Ok(())
}

/// The message's bytes; None when it is left (counted as skipped) or gone.
async fn fetch(
    mailbox: &Mailbox,
    client: &mut Client,
    listed: &Listed,
    report: &mut PollReport,
) -> Result<Option<Vec<u8>>, MailboxError> {
    let limit = mailbox.limits.max_message_size;
    let fetched = match listed.size {
        Some(size) if size > limit as u64 => Fetched::TooLarge(size),
        _ => client.fetch(listed.id).await?,
    };
    let server = &mailbox.url;
    match fetched {
        Fetched::Message(raw) => return Ok(Some(raw)),
        Fetched::Gone => return Ok(None),
        Fetched::TooLarge(size) => tracing::warn!(
            mailbox = %server,
            message = listed.id,
            size,
            limit,
            "bounce mailbox: message over the size limit left in the mailbox"
        ),
        Fetched::Unreadable(answer) => tracing::warn!(
            mailbox = %server,
            message = listed.id,
            %answer,
            "bounce mailbox: the server would not give the message; left in the mailbox"
        ),
    }
    report.skipped += 1;
    Ok(None)
}

/// Stores the message (durable when this returns), then applies it; a failure to apply
/// leaves it stored for a later round.
async fn record(
    store: &Store,
    settings: &BounceSettings,
    raw: &[u8],
) -> Result<StoredRaw, StoreError> {
    let incoming = IncomingBounce {
        raw,
        envelope_from: None,
        envelope_to: &[],
        received_at: crate::time::now(),
    };
    let stored = crate::bounce::store(store, &incoming).await?;
    if let Err(error) = crate::bounce::process(store, settings, stored.id).await {
        tracing::error!(%error, bounce = stored.id, "bounce stored but not yet applied; it is applied in a later round");
    }
    Ok(stored)
}

/// A logged-in session with the folder selected.
enum Client {
    Imap(Imap),
    Pop3(Pop3),
}

impl Client {
    async fn open(mailbox: &Mailbox) -> Result<Client, MailboxError> {
        let wire = Wire::connect(&mailbox.url, &mailbox.tls, &mailbox.limits).await?;
        Ok(match mailbox.url.protocol {
            Protocol::Imap => Client::Imap(Imap::open(wire, &mailbox.url).await?),
            Protocol::Pop3 => Client::Pop3(Pop3::open(wire, &mailbox.url).await?),
        })
    }

    async fn messages(&mut self) -> Result<Vec<Listed>, MailboxError> {
        match self {
            Client::Imap(imap) => imap.messages().await,
            Client::Pop3(pop) => pop.messages().await,
        }
    }

    async fn fetch(&mut self, id: u32) -> Result<Fetched, MailboxError> {
        match self {
            Client::Imap(imap) => imap.fetch(id).await,
            Client::Pop3(pop) => pop.fetch(id).await,
        }
    }

    async fn remove(&mut self, id: u32, move_to: Option<&str>) -> Result<Removal, MailboxError> {
        match self {
            Client::Imap(imap) => imap.remove(id, move_to).await,
            Client::Pop3(pop) => pop.remove(id).await,
        }
    }

    async fn finish(self) -> Result<(), MailboxError> {
        match self {
            Client::Imap(imap) => imap.finish().await,
            Client::Pop3(pop) => pop.finish().await,
        }
    }
}
