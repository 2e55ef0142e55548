//! A minimal IMAP4rev1 client (RFC 3501) for reading a bounce folder: LOGIN, SELECT,
//! UID SEARCH, UID FETCH BODY.PEEK[], then UID MOVE (RFC 6851) or UID STORE \Deleted
//! and UID EXPUNGE (RFC 4315) or EXPUNGE, and LOGOUT.

mod syntax;

use std::collections::HashMap;

use super::error::MailboxError;
use super::wire::Wire;
use super::{Fetched, Listed, MailboxUrl, Removal};
use syntax::{Arg, Untagged, uid_set};

/// UIDs per `UID FETCH … (RFC822.SIZE)`, so that the command line stays short.
const SIZES_PER_FETCH: usize = 200;

pub(super) struct Imap {
    wire: Wire,
    next_tag: u32,
    /// Upper-case, as the server last announced them.
    capabilities: Vec<String>,
    /// UIDs flagged `\Deleted` in this session, expunged by [`Imap::finish`].
    deleted: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bad,
}

/// What a command got: the untagged responses, then the tagged status and its text.
struct Reply {
    untagged: Vec<Untagged>,
    status: Status,
    answer: Vec<u8>,
}

impl Imap {
    /// Reads the greeting, logs in and selects `url.folder`.
    pub async fn open(wire: Wire, url: &MailboxUrl) -> Result<Imap, MailboxError> {
        let mut imap = Imap {
            wire,
            next_tag: 1,
            capabilities: Vec::new(),
            deleted: Vec::new(),
        };
        let preauthenticated = imap.greeting().await?;
        if !preauthenticated {
            imap.capabilities.clear();
            let login = [Arg::Str(&url.user), Arg::Str(url.password())];
            let reply = imap.ok("LOGIN", &login).await?;
            imap.note_capabilities(&reply);
        }
        if imap.capabilities.is_empty() {
            let reply = imap.ok("CAPABILITY", &[]).await?;
            imap.note_capabilities(&reply);
        }
        imap.ok("SELECT", &[Arg::Mailbox(&url.folder)]).await?;
        Ok(imap)
    }

    /// Every message in the folder, oldest first, with its size when the server says.
    pub async fn messages(&mut self) -> Result<Vec<Listed>, MailboxError> {
        // ALL, not UNDELETED: a message flagged by a round that stopped before its
        // EXPUNGE is read again (its digest makes that harmless) and expunged this time.
        let reply = self.ok("UID SEARCH", &[Arg::Atom("ALL")]).await?;
        let mut uids: Vec<u32> = reply
            .untagged
            .iter()
            .filter_map(Untagged::search)
            .flatten()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let sizes = self.sizes(&uids).await?;
        Ok(uids
            .into_iter()
            .map(|uid| Listed {
                id: uid,
                size: sizes.get(&uid).copied(),
            })
            .collect())
    }

    /// RFC822.SIZE of each message the server still has.
    async fn sizes(&mut self, uids: &[u32]) -> Result<HashMap<u32, u64>, MailboxError> {
        let mut sizes = HashMap::new();
        for chunk in uids.chunks(SIZES_PER_FETCH) {
            let set = uid_set(chunk);
            let args = [Arg::Atom(&set), Arg::Atom("(RFC822.SIZE)")];
            let reply = self.ok("UID FETCH", &args).await?;
            sizes.extend(reply.untagged.iter().filter_map(Untagged::uid_and_size));
        }
        Ok(sizes)
    }

    /// The message's bytes, without setting `\Seen`.
    pub async fn fetch(&mut self, uid: u32) -> Result<Fetched, MailboxError> {
        let uid_text = uid.to_string();
        let args = [Arg::Atom(&uid_text), Arg::Atom("BODY.PEEK[]")];
        let reply = self.command("UID FETCH", &args).await?;
        match reply.status {
            Status::Ok => {}
            Status::No => return Ok(Fetched::Unreadable(super::error::shown(&reply.answer))),
            Status::Bad => return Err(self.wire.refused("UID FETCH", &reply.answer)),
        }
        let mut answers = reply
            .untagged
            .into_iter()
            .filter(|u| u.fetched_uid() == Some(uid))
            .peekable();
        if answers.peek().is_none() {
            return Ok(Fetched::Gone);
        }
        let body = answers.find_map(Untagged::into_body);
        Ok(body.unwrap_or_else(|| Fetched::Unreadable("no BODY[] literal in its answer".into())))
    }

    /// Moves the message to `move_to`, or flags it for the expunge at the end.
    pub async fn remove(
        &mut self,
        uid: u32,
        move_to: Option<&str>,
    ) -> Result<Removal, MailboxError> {
        let uid_text = uid.to_string();
        match move_to {
            Some(folder) if self.has("MOVE") => {
                self.copy_or_move("UID MOVE", &uid_text, folder).await?;
                return Ok(Removal::Done);
            }
            // Without MOVE: a copy there, and the original expunged at the end.
            Some(folder) => self.copy_or_move("UID COPY", &uid_text, folder).await?,
            None => {}
        }
        let args = [
            Arg::Atom(&uid_text),
            Arg::Atom("+FLAGS.SILENT"),
            Arg::Atom("(\\Deleted)"),
        ];
        self.ok("UID STORE", &args).await?;
        self.deleted.push(uid);
        Ok(Removal::Pending)
    }

    /// Expunges what was flagged, then logs out.
    pub async fn finish(mut self) -> Result<(), MailboxError> {
        if !self.deleted.is_empty() {
            if self.has("UIDPLUS") {
                let set = uid_set(&self.deleted);
                self.ok("UID EXPUNGE", &[Arg::Atom(&set)]).await?;
            } else {
                self.ok("EXPUNGE", &[]).await?;
            }
        }
        if let Err(error) = self.command("LOGOUT", &[]).await {
            tracing::debug!(%error, "bounce mailbox: LOGOUT");
        }
        Ok(())
    }

    /// `UID MOVE`/`UID COPY` to `folder`, creating it when the server says it is missing.
    async fn copy_or_move(
        &mut self,
        name: &str,
        uid: &str,
        folder: &str,
    ) -> Result<(), MailboxError> {
        let args = [Arg::Atom(uid), Arg::Mailbox(folder)];
        let reply = self.command(name, &args).await?;
        if reply.status == Status::No && syntax::has_code(&reply.answer, "TRYCREATE") {
            self.ok("CREATE", &[Arg::Mailbox(folder)]).await?;
            self.ok(name, &args).await?;
            return Ok(());
        }
        self.checked(name, reply).map(drop)
    }

    /// True when the greeting was PREAUTH (no login needed).
    async fn greeting(&mut self) -> Result<bool, MailboxError> {
        let line = self.wire.line("the greeting").await?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with(b"* BYE") {
            return Err(self.wire.refused("the connection", &line));
        }
        let preauthenticated = upper.starts_with(b"* PREAUTH");
        if !preauthenticated && !upper.starts_with(b"* OK") {
            let detail = format!("greeting '{}'", super::error::shown(&line));
            return Err(self.wire.protocol("the connection", detail));
        }
        if let Some(found) = syntax::code_capabilities(&line) {
            self.capabilities = found;
        }
        Ok(preauthenticated)
    }

    fn note_capabilities(&mut self, reply: &Reply) {
        let found = reply
            .untagged
            .iter()
            .find_map(Untagged::capabilities)
            .or_else(|| syntax::code_capabilities(&reply.answer));
        if let Some(found) = found {
            self.capabilities = found;
        }
    }

    fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    async fn ok(&mut self, name: &str, args: &[Arg<'_>]) -> Result<Reply, MailboxError> {
        let reply = self.command(name, args).await?;
        self.checked(name, reply)
    }

    fn checked(&self, name: &str, reply: Reply) -> Result<Reply, MailboxError> {
        match reply.status {
            Status::Ok => Ok(reply),
            Status::No | Status::Bad => Err(self.wire.refused(name, &reply.answer)),
        }
    }

    /// Sends one command (`name` alone appears in errors, never its arguments) and reads
    /// up to its tagged completion.
    async fn command(&mut self, name: &str, args: &[Arg<'_>]) -> Result<Reply, MailboxError> {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        let (with_literals, last) = syntax::command_line(&tag, name, args)
            .map_err(|reason| MailboxError::Settings(format!("IMAP {name}: {reason}")))?;
        let mut untagged = Vec::new();
        let mut budget = Budget::new(self.wire.limits());
        for (text, literal) in &with_literals {
            self.wire.send(text, name).await?;
            if let Some(done) = self
                .continuation(&tag, name, &mut untagged, &mut budget)
                .await?
            {
                return Ok(done);
            }
            self.wire.send(literal, name).await?;
        }
        self.wire.send(&last, name).await?;
        self.completion(&tag, name, untagged, &mut budget).await
    }

    /// Waits for `+` before a literal; a tagged answer instead ends the command.
    async fn continuation(
        &mut self,
        tag: &str,
        name: &str,
        untagged: &mut Vec<Untagged>,
        budget: &mut Budget,
    ) -> Result<Option<Reply>, MailboxError> {
        loop {
            let line = self.wire.line(name).await?;
            if line.starts_with(b"+") {
                return Ok(None);
            }
            if let Some(reply) = self.tagged(tag, name, &line, untagged)? {
                return Ok(Some(reply));
            }
            let response = self.untagged(line, name, budget).await?;
            untagged.push(response);
        }
    }

    async fn completion(
        &mut self,
        tag: &str,
        name: &str,
        mut untagged: Vec<Untagged>,
        budget: &mut Budget,
    ) -> Result<Reply, MailboxError> {
        loop {
            let line = self.wire.line(name).await?;
            if let Some(reply) = self.tagged(tag, name, &line, &mut untagged)? {
                return Ok(reply);
            }
            if line.starts_with(b"+") {
                return Err(self
                    .wire
                    .protocol(name, "it asked for input nobody sent".into()));
            }
            let response = self.untagged(line, name, budget).await?;
            if response.is_bye() && name != "LOGOUT" {
                return Err(self.wire.refused(name, &response.text()));
            }
            untagged.push(response);
        }
    }

    /// The reply when `line` is the tagged completion.
    fn tagged(
        &self,
        tag: &str,
        name: &str,
        line: &[u8],
        untagged: &mut Vec<Untagged>,
    ) -> Result<Option<Reply>, MailboxError> {
        let Some(rest) = line
            .strip_prefix(tag.as_bytes())
            .and_then(|r| r.strip_prefix(b" "))
        else {
            return Ok(None);
        };
        let (word, answer) =
            rest.split_at(rest.iter().position(|&b| b == b' ').unwrap_or(rest.len()));
        let status = match word.to_ascii_uppercase().as_slice() {
            b"OK" => Status::Ok,
            b"NO" => Status::No,
            b"BAD" => Status::Bad,
            _ => {
                let detail = format!("status '{}'", super::error::shown(word));
                return Err(self.wire.protocol(name, detail));
            }
        };
        Ok(Some(Reply {
            untagged: std::mem::take(untagged),
            status,
            answer: answer.trim_ascii().to_vec(),
        }))
    }

    /// An untagged response starting with `line`, with the literals it announces.
    async fn untagged(
        &mut self,
        line: Vec<u8>,
        name: &str,
        budget: &mut Budget,
    ) -> Result<Untagged, MailboxError> {
        if !line.starts_with(b"* ") {
            let detail = format!("the line '{}'", super::error::shown(&line));
            return Err(self.wire.protocol(name, detail));
        }
        let mut response = Untagged::new(line);
        while let Some(len) = response.announced_literal() {
            let literal = match usize::try_from(len)
                .ok()
                .filter(|&n| budget.take_literal(n))
            {
                Some(n) => syntax::Literal::Bytes(self.wire.exact(n, name).await?),
                None => {
                    self.wire.skip(len, name).await?;
                    syntax::Literal::TooLarge(len)
                }
            };
            let next = self.wire.line(name).await?;
            response.push(literal, next);
        }
        if !budget.take_text(response.text_len()) {
            let detail = format!("more than {} bytes of responses", budget.text_limit);
            return Err(self.wire.protocol(name, detail));
        }
        Ok(response)
    }
}

/// What one command's responses may hold: literals up to the message size limit in
/// all, text up to twice the line limit.
struct Budget {
    literal_left: usize,
    text_left: usize,
    text_limit: usize,
}

impl Budget {
    fn new(limits: &super::MailboxLimits) -> Budget {
        Budget {
            literal_left: limits.max_message_size,
            text_left: limits.max_line * 2,
            text_limit: limits.max_line * 2,
        }
    }

    fn take_literal(&mut self, len: usize) -> bool {
        let fits = len <= self.literal_left;
        if fits {
            self.literal_left -= len;
        }
        fits
    }

    fn take_text(&mut self, len: usize) -> bool {
        let fits = len <= self.text_left;
        if fits {
            self.text_left -= len;
        }
        fits
    }
}
