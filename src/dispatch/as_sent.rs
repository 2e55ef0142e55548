//! A delivery's message as it was sent, put back together from its record (see
//! [`RenderedWith`]): "view in browser" and `mailcast campaign sent` read it.

use crate::render::{RecipientContext, RenderedWith, recipient_digest};
use crate::store::{Campaign, SentDelivery, Store, StoreError};

/// What can be told of one campaign's message to one recipient.
#[derive(Debug)]
pub enum AsSent {
    /// The campaign has no delivery to this recipient.
    NoDelivery,
    /// Not handed to SMTP (yet): there is no message to show.
    NotSent(SentDelivery),
    /// The recipient's data as it was then is no longer kept (erased).
    DataGone(SentDelivery),
    Sent {
        delivery: SentDelivery,
        record: RenderedWith,
        /// The render context the record describes.
        context: Box<RecipientContext>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AsSentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("delivery {delivery}: its record cannot be read: {reason}")]
    Record { delivery: i64, reason: String },
}

/// Reads what `campaign`'s message to `recipient_id` was rendered with.
pub async fn as_sent(
    store: &Store,
    campaign: &Campaign,
    recipient_id: i64,
) -> Result<AsSent, AsSentError> {
    let Some(delivery) = store.sent_delivery(campaign.id, recipient_id).await? else {
        return Ok(AsSent::NoDelivery);
    };
    let Some(text) = &delivery.rendered_with else {
        return Ok(AsSent::NotSent(delivery));
    };
    let record = RenderedWith::decode(text).map_err(|reason| AsSentError::Record {
        delivery: delivery.id,
        reason,
    })?;
    let versions = store.recipient_versions(recipient_id).await?;
    let Some(recipient) = versions
        .into_iter()
        .find(|r| recipient_digest(r) == record.recipient_digest)
    else {
        return Ok(AsSent::DataGone(delivery));
    };
    let products = store.products_by_id(&record.product_ids()).await?;
    let declared = &campaign.settings.0.declared_segments;
    let mut context = Box::new(record.context(recipient, declared, &products));
    if campaign.settings.0.standing {
        context.trigger = store
            .trigger_events(campaign.id, &[recipient_id])
            .await?
            .remove(&recipient_id);
    }
    Ok(AsSent::Sent {
        delivery,
        record,
        context,
    })
}
