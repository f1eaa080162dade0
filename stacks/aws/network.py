"""VPC with public and private subnets per AZ, NAT (one, or one per AZ), flow logs."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, policy_document
from stacks.aws.kms import EnvironmentKey
from stacks.subnets import split_subnets


class Network(Construct):
    """Exposes ``vpc_id``, ``private_subnet_ids`` and ``public_subnet_ids``."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, key: EnvironmentKey) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None
        cfg = env.aws.network
        cluster_name = env.resource_name("eks")
        self.vpc = Vpc(
            self, "vpc", cidr_block=cfg.cidr, enable_dns_hostnames=True, enable_dns_support=True, tags={"Name": env.resource_name("vpc")}
        )
        self.vpc_id = self.vpc.id
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id)  # no rules: nothing uses the default group
        igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": env.resource_name("igw")})

        public_rt = RouteTable(self, "public-rt", vpc_id=self.vpc.id, tags={"Name": env.resource_name("public")})
        Route(self, "public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)

        private_cidrs = split_subnets(cfg.cidr, len(cfg.zones), offset=0)
        public_cidrs = split_subnets(cfg.cidr, len(cfg.zones), offset=8)
        self.public_subnets: list[Subnet] = []
        self.private_subnets: list[Subnet] = []
        nats: list[NatGateway] = []
        for i, az in enumerate(cfg.zones):
            public = self._subnet(env, f"public-{i}", public_cidrs[i], az, "kubernetes.io/role/elb", cluster_name)
            RouteTableAssociation(self, f"public-{i}-rt", subnet_id=public.id, route_table_id=public_rt.id)
            self.public_subnets.append(public)
            private = self._subnet(env, f"private-{i}", private_cidrs[i], az, "kubernetes.io/role/internal-elb", cluster_name)
            self.private_subnets.append(private)
            if cfg.nat == "per_az" or i == 0:
                eip = Eip(self, f"nat-eip-{i}", domain="vpc", tags={"Name": env.resource_name(f"nat-{i}")})
                nats.append(
                    NatGateway(
                        self,
                        f"nat-{i}",
                        allocation_id=eip.id,
                        subnet_id=public.id,
                        tags={"Name": env.resource_name(f"nat-{i}")},
                        depends_on=[igw],
                    )
                )
            rt = RouteTable(self, f"private-{i}-rt", vpc_id=self.vpc.id, tags={"Name": env.resource_name(f"private-{i}")})
            Route(self, f"private-{i}-default", route_table_id=rt.id, destination_cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)
            RouteTableAssociation(self, f"private-{i}-rta", subnet_id=private.id, route_table_id=rt.id)
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.public_subnet_ids = [s.id for s in self.public_subnets]

        log_group = CloudwatchLogGroup(
            self,
            "flow-logs",
            name=f"/vpc/{env.resource_name('vpc')}/flow-logs",
            retention_in_days=cfg.flow_log_retention_days,
            kms_key_id=key.arn,
        )
        role = IamRole(
            self,
            "flow-logs-role",
            name=env.resource_name("vpc-flow-logs"),
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
        )
        IamRolePolicy(
            self,
            "flow-logs-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
                        "Resource": [log_group.arn, f"{log_group.arn}:*"],
                    },
                ]
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
        )

    def _subnet(self, env: Environment, id_: str, cidr: str, az: str, lb_role: str, cluster_name: str) -> Subnet:
        """A subnet tagged for the cluster and for the load balancers of its kind (public or internal)."""
        return Subnet(
            self,
            id_,
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            tags={"Name": env.resource_name(id_), lb_role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"},
        )
