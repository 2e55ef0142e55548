//! A `send` step puts one delivery into the ledger of the campaign kept for that step
//! of that version and run ordinal (made the first time a run needs it). The ledger
//! holds one delivery per (campaign, recipient), and a recipient's run with a given
//! ordinal is one run, so adding it again after a crash or retry adds nothing.

use super::AutomationError;
use super::definition::{Action, Definition};
use super::engine::AutomationEngine;
use crate::dispatch::cancel_campaign;
use crate::domain::CampaignStatus;
use crate::store::{CampaignSettings, ClaimedRun, NewCampaign};

impl AutomationEngine {
    /// The campaign whose ledger gets the step's message for `run` (the batch adds
    /// the deliveries together, before it saves where the runs stand).
    pub(super) async fn step_campaign(
        &self,
        definition: &Definition,
        run: &ClaimedRun,
        step: usize,
    ) -> Result<i64, AutomationError> {
        let key = (run.version_id, step as i64, run.ordinal);
        if let Some(id) = self.cached_campaign(key) {
            return Ok(id);
        }
        let id = match self.store.automation_campaign(key.0, key.1, key.2).await? {
            Some(id) => id,
            None => self.make_step_campaign(definition, run, step).await?,
        };
        self.cache_campaign(key, id);
        Ok(id)
    }

    async fn make_step_campaign(
        &self,
        definition: &Definition,
        run: &ClaimedRun,
        step: usize,
    ) -> Result<i64, AutomationError> {
        let campaign = self.step_campaign_spec(definition, run, step).await?;
        let store = &self.store;
        let made = store.create_campaign(&campaign).await?;
        store
            .transition_campaign(made, &[CampaignStatus::Draft], CampaignStatus::Running)
            .await?;
        let (version, ordinal) = (run.version_id, run.ordinal);
        let linked = store
            .link_automation_campaign(made, run.automation_id, version, step as i64, ordinal)
            .await?;
        if linked != made {
            // Another worker made this step's campaign at the same moment.
            cancel_campaign(store, made).await?;
        }
        Ok(linked)
    }

    async fn step_campaign_spec(
        &self,
        definition: &Definition,
        run: &ClaimedRun,
        step: usize,
    ) -> Result<NewCampaign, AutomationError> {
        let here = &definition.steps[step];
        let Action::Send {
            template,
            kind,
            topic,
            utm,
            data,
            ..
        } = &here.action
        else {
            unreachable!("only send steps send");
        };
        let stored = self.store.template_by_name(template).await?;
        let template = stored.ok_or_else(|| AutomationError::Send {
            step: step + 1,
            reason: format!("template `{template}` is no longer stored"),
        })?;
        let sender = &definition.sender;
        Ok(NewCampaign {
            name: format!(
                "{}/{}/v{}/run{}-{:06x}",
                definition.name,
                here.id,
                run.version_id,
                run.ordinal,
                rand::random::<u32>() >> 8
            ),
            kind: *kind,
            template_id: template.id,
            segment_id: None,
            topic: topic.clone(),
            from_name: sender.name.clone(),
            from_email: sender.email.clone(),
            reply_to: sender.reply_to.clone(),
            send_at: None,
            settings: CampaignSettings {
                utm: utm.clone(),
                data: data.clone(),
                standing: true,
                ..CampaignSettings::default()
            },
        })
    }
}
