"""Workload W of issue 6: one product, N webhooks, M environments, written out as files.

The same desired state feeds both contenders: the role reads it as inventory plus role
variables, the ansible.builtin.uri baseline reads it already expanded per webhook (what a user
without the collection would keep in their vars), so neither pays for the other's templating.
"""

from __future__ import annotations

import dataclasses
import pathlib

import yaml

PRODUCT = "bench-product"
ACCESS_TAG = "bench-payments"
APP = "bench-provider"
# Not a real secret: ductape-local in test mode only knows the keys its seed declares.
ACCESS_KEY = "dtl_bench_access_key"
ENV_GROUP = "ductape_environments"


@dataclasses.dataclass(frozen=True)
class Workload:
    webhooks: int = 50
    envs: int = 5

    @property
    def env_slugs(self) -> list[str]:
        return [f"env{index:02d}" for index in range(1, self.envs + 1)]

    @property
    def webhook_tags(self) -> list[str]:
        return [f"event_{index:03d}" for index in range(1, self.webhooks + 1)]

    @property
    def registrations(self) -> int:
        return self.webhooks * self.envs

    def receiver_base_url(self, slug: str) -> str:
        # Registrations only store the receiver URL; nothing listens there during the converge.
        return f"http://127.0.0.1:9/{slug}"

    def webhook_auth(self, tag: str) -> dict:
        return {"headers": {"X-Bench-Signature": f"bench-signature-{tag}"}}

    def seed(self) -> dict:
        return {
            "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT]}],
            "products": [
                {
                    "tag": PRODUCT,
                    "envs": self.env_slugs,
                    "connections": [
                        {
                            "access_tag": ACCESS_TAG,
                            "app": APP,
                            "envs": {slug: f"app-{slug}" for slug in self.env_slugs},
                        }
                    ],
                }
            ],
            "apps": [
                {
                    "tag": APP,
                    # No provider registration endpoint: the benchmark measures the control
                    # plane and the Ansible side, not a provider's latency.
                    "webhooks": [{"tag": tag, "name": f"Bench {tag}"} for tag in self.webhook_tags],
                }
            ],
        }

    def inventory(self) -> dict:
        controller = {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        }
        env_hosts = {
            slug: dict(controller, ductape_env=slug, ductape_receiver_base_url=self.receiver_base_url(slug))
            for slug in self.env_slugs
        }
        return {
            "all": {
                "hosts": {"localhost": dict(controller)},
                "children": {ENV_GROUP: {"hosts": env_hosts}},
            }
        }

    def role_vars(self, api_url: str) -> dict:
        return {
            "ductape_api_url": api_url,
            "ductape_access_key": ACCESS_KEY,
            "ductape_product": PRODUCT,
            "ductape_webhooks": [
                {
                    "access_tag": ACCESS_TAG,
                    "webhook_tag": tag,
                    "path": f"/hooks/{tag}",
                    "method": "POST",
                    "auth": self.webhook_auth(tag),
                }
                for tag in self.webhook_tags
            ],
        }

    def uri_vars(self, api_url: str) -> dict:
        return {
            "ductape_api_url": api_url,
            "ductape_access_key": ACCESS_KEY,
            "ductape_product": PRODUCT,
            "ductape_registrations": [
                {
                    "access_tag": ACCESS_TAG,
                    "webhook_tag": tag,
                    "envs": [
                        {
                            "slug": slug,
                            "url": self.receiver_base_url(slug) + f"/hooks/{tag}",
                            "method": "POST",
                            "auth": self.webhook_auth(tag),
                        }
                        for slug in self.env_slugs
                    ],
                }
                for tag in self.webhook_tags
            ],
        }

    @property
    def changed_webhook(self) -> str:
        return self.webhook_tags[0]

    @property
    def changed_env(self) -> str:
        return self.env_slugs[-1]

    def changed_url(self) -> str:
        return self.receiver_base_url(self.changed_env) + f"/hooks/{self.changed_webhook}-v2"

    def role_vars_after_change(self, api_url: str) -> dict:
        """The role's input after one env of one webhook moved to a new receiver URL."""
        variables = self.role_vars(api_url)
        webhook = variables["ductape_webhooks"][0]
        webhook["overrides"] = {self.changed_env: {"url": self.changed_url()}}
        return variables

    def uri_vars_after_change(self, api_url: str) -> dict:
        variables = self.uri_vars(api_url)
        variables["ductape_registrations"][0]["envs"][-1]["url"] = self.changed_url()
        return variables


def write_yaml(path: pathlib.Path, data: dict) -> pathlib.Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
