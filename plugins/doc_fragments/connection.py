# -*- coding: utf-8 -*-
# Copyright: ductape.webhooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


class ModuleDocFragment:
    # The connection options of every ductape module (module_utils/ductape_api.connection_argument_spec).
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Ductape API. Credentials inside it are shown masked in every message.
      - For a local server started with C(ductape-local serve), V(http://127.0.0.1:4311).
      - If not set, the value of the E(DUCTAPE_API_URL) environment variable is used.
    type: str
    default: https://api.ductape.app
  access_key:
    description:
      - 'The Ductape access key, sent as C(Authorization: Bearer <key>).'
      - If not set, the value of the E(DUCTAPE_ACCESS_KEY) environment variable is used. One of the two is required.
      - It never appears in results, diffs, errors or logs.
    type: str
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate.
      - Set to V(false) only for a server you trust, such as a local one with a self-signed certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP request to connect and answer.
    type: float
    default: 30
  retries:
    description:
      - How many times a request is retried after a connection error, a timeout, or an HTTP 429, 502, 503 or 504 answer.
      - Retries wait with jittered exponential backoff, or as long as the API's C(Retry-After) header asks (at most 60 seconds).
      - Each retry is reported as a warning. V(0) turns retries off.
      - A 502 that the Ductape API answers itself (a provider refused to register the link) is not retried at
        once; the registration is kept, and the next run sends it to the provider again.
      - A refused connection (nothing listens at O(api_url)) is retried once, after a second, whatever this says.
      - A 429 pauses every request of the task, not only the one that got it, for as long as it asks.
    type: int
    default: 3
requirements:
  - requests (on the host that runs the module; the controller when the task runs locally)
notes:
  - Set the connection once for every ductape task of a play with C(module_defaults) and the action group
    C(group/ductape.webhooks.ductape), or with the variables C(ductape_api_url), C(ductape_access_key),
    C(ductape_validate_certs), C(ductape_timeout) and C(ductape_retries) (inventory, play or role
    variables), which the action plugin reads for an option the task does not set, before the
    environment variables. The variables keep the access key out of the task's arguments, which
    E(ANSIBLE_DISPLAY_ARGS_TO_STDOUT) prints (AWX/AAP job events); a message about an option taken from
    a variable names the variable.
  - Do not pass the access key through a task's C(environment); when the module runs on a target,
    ansible-core prints the environment at C(-vvv).
"""

    # The engine's concurrency, for the modules that converge registrations.
    PARALLELISM = r"""
options:
  parallelism:
    description:
      - How many requests the task sends at once, at most (1 to 64); V(1) sends every request in turn.
      - The reads come first, then the writes, each webhook's and env's independently of the others; the
        results keep the order given.
      - The reads follow one rule. For up to 4 webhooks of one access tag in the task, one filtered read
        each; for more, the app's whole listing, one request per 250 webhooks that the app defines.
    type: int
    default: 8
"""
