//! The message and conversation state machines. Pure code: the store applies what these
//! functions decide.

use std::fmt;
use std::str::FromStr;

/// Where a message is in its life. `[scheduled →] queued → sending → sent → delivered → read`,
/// or `failed`; a message not yet handed to the provider may end `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(
    description = "[scheduled →] queued → sending → sent → delivered → read, or failed (final); a scheduled or queued message may be cancelled (final)."
)]
pub enum MessageStatus {
    /// Stored with a `sendAt` in the future: not claimed before then.
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    /// Taken back before it was handed to the provider: final.
    Cancelled,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 8] = [
        Self::Scheduled,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Progress rank along the happy path; `failed` is outside it.
    fn rank(self) -> u8 {
        match self {
            Self::Scheduled | Self::Queued => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Failed | Self::Cancelled => 5,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Read | Self::Failed | Self::Cancelled)
    }

    /// Whether a message in this status may still be cancelled (not handed to the provider).
    pub fn cancellable(self) -> bool {
        matches!(self, Self::Scheduled | Self::Queued)
    }

    /// Whether a message in `self` moves to `next` when `next` is reported.
    ///
    /// A status never moves backwards (a late `delivered` after `read` is ignored), duplicates
    /// change nothing, and `failed` is final. A provider can report `failed` after `sent` or
    /// even `delivered` (Meta does, for example when a message expires), so `failed` is
    /// accepted from any non-final state; it is not accepted after `read`.
    pub fn advances_to(self, next: MessageStatus) -> bool {
        match (self, next) {
            (Self::Failed | Self::Read | Self::Cancelled, _) => false,
            (_, Self::Cancelled) => self.cancellable(),
            (_, Self::Failed) => true,
            _ => next.rank() > self.rank(),
        }
    }

    /// Statuses that prove the provider accepted the message for delivery: they open a
    /// pending conversation.
    pub fn confirms_delivery(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered | Self::Read)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown message status '{s}'"))
    }
}

/// pending: a first template is not confirmed by WhatsApp yet; open; closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Pending,
    Open,
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// What a message status does to the conversation its message belongs to.
    /// `first_message` is whether the message is the one that created the conversation.
    pub fn on_message_status(
        self,
        message_status: MessageStatus,
        first_message: bool,
    ) -> Option<(ConversationStatus, Option<CloseReason>)> {
        match self {
            Self::Pending if message_status.confirms_delivery() => Some((Self::Open, None)),
            Self::Pending if message_status == MessageStatus::Failed && first_message => {
                Some((Self::Closed, Some(CloseReason::FirstMessageFailed)))
            }
            Self::Pending if message_status == MessageStatus::Cancelled && first_message => {
                Some((Self::Closed, Some(CloseReason::FirstMessageCancelled)))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ConversationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            _ => Err(format!("unknown conversation status '{s}'")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Operator,
    Expired,
    FirstMessageFailed,
    /// The message that created the conversation was cancelled before it was sent.
    FirstMessageCancelled,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Expired => "expired",
            Self::FirstMessageFailed => "first_message_failed",
            Self::FirstMessageCancelled => "first_message_cancelled",
        }
    }

    /// The reason [`CloseReason::as_str`] names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Operator,
            Self::Expired,
            Self::FirstMessageFailed,
            Self::FirstMessageCancelled,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    #[test]
    fn only_a_message_not_handed_over_is_cancelled_and_cancelled_is_final() {
        assert!(Scheduled.advances_to(Cancelled));
        assert!(Queued.advances_to(Cancelled));
        for later in [Sending, Sent, Delivered, Read, Failed, Cancelled] {
            assert!(!later.advances_to(Cancelled), "{later}");
        }
        for next in MessageStatus::ALL {
            assert!(!Cancelled.advances_to(next), "{next}");
        }
        assert!(Scheduled.advances_to(Sending));
        assert!(Cancelled.is_final());
        assert_eq!(
            ConversationStatus::Pending.on_message_status(Cancelled, true),
            Some((
                ConversationStatus::Closed,
                Some(CloseReason::FirstMessageCancelled)
            ))
        );
        assert_eq!(
            ConversationStatus::Pending.on_message_status(Cancelled, false),
            None
        );
        assert_eq!("scheduled".parse::<MessageStatus>(), Ok(Scheduled));
    }

    #[test]
    fn statuses_move_forward_only() {
        assert!(Queued.advances_to(Sending));
        assert!(Sending.advances_to(Sent));
        assert!(Queued.advances_to(Delivered), "a skipped step is fine");
        assert!(Sent.advances_to(Read));
        assert!(!Read.advances_to(Delivered), "late delivered after read");
        assert!(!Delivered.advances_to(Sent));
        assert!(!Sent.advances_to(Sent), "duplicates change nothing");
    }

    #[test]
    fn failed_is_final_and_reachable_until_read() {
        for st in [Queued, Sending, Sent, Delivered] {
            assert!(st.advances_to(Failed), "{st} -> failed");
        }
        assert!(!Read.advances_to(Failed));
        for st in MessageStatus::ALL {
            assert!(!Failed.advances_to(st), "failed -> {st}");
        }
    }

    #[test]
    fn status_names_round_trip() {
        for st in MessageStatus::ALL {
            assert_eq!(st.as_str().parse::<MessageStatus>().unwrap(), st);
        }
        assert!("bogus".parse::<MessageStatus>().is_err());
        assert_eq!(
            "open".parse::<ConversationStatus>().unwrap(),
            ConversationStatus::Open
        );
    }

    #[test]
    fn pending_conversation_opens_on_sent_or_delivered() {
        let p = ConversationStatus::Pending;
        assert_eq!(
            p.on_message_status(Sent, true),
            Some((ConversationStatus::Open, None))
        );
        assert_eq!(
            p.on_message_status(Delivered, true),
            Some((ConversationStatus::Open, None))
        );
        assert_eq!(p.on_message_status(Sending, true), None);
    }

    #[test]
    fn pending_conversation_closes_when_its_first_message_fails() {
        let p = ConversationStatus::Pending;
        assert_eq!(
            p.on_message_status(Failed, true),
            Some((
                ConversationStatus::Closed,
                Some(CloseReason::FirstMessageFailed)
            ))
        );
        assert_eq!(p.on_message_status(Failed, false), None);
    }

    #[test]
    fn open_and_closed_conversations_ignore_message_statuses() {
        for st in MessageStatus::ALL {
            assert_eq!(ConversationStatus::Open.on_message_status(st, true), None);
            assert_eq!(ConversationStatus::Closed.on_message_status(st, true), None);
        }
    }
}
