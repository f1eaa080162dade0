"""The environment's AWS share of its monthly budget as an AWS Budgets budget.

Each environment has its own account, so the budget covers the whole account (no cost-allocation tag
filter, which would read $0 until someone activates the tag in the billing console).
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.budgets_budget import BudgetsBudget, BudgetsBudgetNotification
from constructs import Construct

from environments.schema import Environment


class Budget(Construct):
    """An alert to the recipients at every threshold of actual spend, and when the forecast passes 100 %."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment) -> None:
        super().__init__(scope, id_)
        budget = env.budget
        notifications = [
            BudgetsBudgetNotification(
                comparison_operator="GREATER_THAN",
                threshold=pct,
                threshold_type="PERCENTAGE",
                notification_type="ACTUAL",
                subscriber_email_addresses=list(budget.recipients),
            )
            for pct in budget.thresholds_pct
        ]
        notifications.append(
            BudgetsBudgetNotification(
                comparison_operator="GREATER_THAN",
                threshold=100,
                threshold_type="PERCENTAGE",
                notification_type="FORECASTED",
                subscriber_email_addresses=list(budget.recipients),
            )
        )
        self.budget = BudgetsBudget(
            self,
            "budget",
            name=env.resource_name("monthly"),
            budget_type="COST",
            limit_amount=f"{env.budget_usd('aws'):.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            notification=notifications,
        )
