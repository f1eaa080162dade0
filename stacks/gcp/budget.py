"""The environment's GCP share of its monthly budget as a Cloud Billing budget on its project, with
an e-mail notification channel per recipient (the billing account's admins are not spammed)."""

from __future__ import annotations

from cdktf_cdktf_provider_google.billing_budget import (
    BillingBudget,
    BillingBudgetAllUpdatesRule,
    BillingBudgetAmount,
    BillingBudgetAmountSpecifiedAmount,
    BillingBudgetBudgetFilter,
    BillingBudgetThresholdRules,
)
from cdktf_cdktf_provider_google.monitoring_notification_channel import MonitoringNotificationChannel
from constructs import Construct

from environments.schema import Environment


class Budget(Construct):
    """``project_number`` (not the id) is what a budget filter takes."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, project_number: str) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        channels = [
            MonitoringNotificationChannel(
                self,
                f"email-{i}",
                display_name=f"{env.name} budget: {address}",
                type="email",
                labels={"email_address": address},
            )
            for i, address in enumerate(env.budget.recipients)
        ]
        usd = env.budget_usd("gcp")
        self.budget = BillingBudget(
            self,
            "budget",
            billing_account=env.gcp.billing_account,
            display_name=env.resource_name("monthly"),
            budget_filter=BillingBudgetBudgetFilter(projects=[f"projects/{project_number}"], calendar_period="MONTH"),
            amount=BillingBudgetAmount(
                specified_amount=BillingBudgetAmountSpecifiedAmount(currency_code="USD", units=str(int(usd)), nanos=round(usd % 1 * 1e9))
            ),
            threshold_rules=[BillingBudgetThresholdRules(threshold_percent=pct / 100) for pct in env.budget.thresholds_pct]
            + [BillingBudgetThresholdRules(threshold_percent=1.0, spend_basis="FORECASTED_SPEND")],
            all_updates_rule=BillingBudgetAllUpdatesRule(
                monitoring_notification_channels=[c.id for c in channels], disable_default_iam_recipients=True
            ),
        )
