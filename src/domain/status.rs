use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}'")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! string_enum {
    ($name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownStatus;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus { kind: $kind, value: s.to_string() }),
                }
            }
        }
    };
}

string_enum!(DeliveryStatus, "delivery status", {
    Pending => "pending",
    Sending => "sending",
    Sent => "sent",
    Deferred => "deferred",
    Failed => "failed",
    Suppressed => "suppressed",
    Unknown => "unknown",
    Bounced => "bounced",
});

string_enum!(CampaignStatus, "campaign status", {
    Draft => "draft",
    Scheduled => "scheduled",
    Running => "running",
    Paused => "paused",
    Done => "done",
    Cancelled => "cancelled",
    Expired => "expired",
});

string_enum!(CampaignKind, "campaign kind", {
    Marketing => "marketing",
    Transactional => "transactional",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(*status));
        }
        let error = "sned".parse::<DeliveryStatus>().unwrap_err();
        assert_eq!(error.to_string(), "unknown delivery status 'sned'");
    }
}
