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
      - Base URL of the Ductape API. It must not hold credentials (C(user:password@)); the access key is the
        only credential sent to the API, and the task fails before any request if the URL has them.
        Query values that look like secrets are shown masked in every message.
      - For a local server started with C(ductape-local serve), V(http://127.0.0.1:4311).
      - Only the API's three webhook routes are known of the hosted Ductape; the modules and options that need
        more from the server say so, and the guide "Ductape's API and this collection" lists what each needs.
      - Wrapped links always come from the API's answers, never from this URL (the hosted links are on
        V(https://webhooks.ductape.app)).
      - If not set, the value of the E(DUCTAPE_API_URL) environment variable is used.
    type: str
    default: https://api.ductape.app
  access_key:
    description:
      - 'The Ductape access key, sent as C(Authorization: Bearer <key>) or C(x-access-token: <key>) (O(auth_header)),
        or first exchanged for a session token (O(token_exchange)).'
      - If not set, the value of the E(DUCTAPE_ACCESS_KEY) environment variable is used. One of the two is required.
      - It never appears in results, diffs, errors or logs; nor does a session token.
    type: str
  auth_header:
    description:
      - 'How the credential travels: V(authorization) sends C(Authorization: Bearer <credential>), V(x-access-token)
        sends C(x-access-token: <credential>). Ductape''s services read both.'
      - If not set, the value of the E(DUCTAPE_AUTH_HEADER) environment variable is used.
    type: str
    choices: [authorization, x-access-token]
    default: authorization
  token_exchange:
    description:
      - Whether the access key is first exchanged for a session token, which every call then sends instead.
      - V(none) sends the access key itself (ductape-local, and the contract).
      - V(ductape-local) exchanges it at C(POST /webhooks/v1/session), as C(ductape-local serve --compat ductape)
        requires. This is this project's guess at the hosted platform's exchange, whose route is not public; the
        hook point for another exchange is C(TOKEN_EXCHANGES) in C(module_utils/ductape_api.py).
      - The token is fetched once per task, and once more when the API answers 401 to it.
      - If not set, the value of the E(DUCTAPE_TOKEN_EXCHANGE) environment variable is used.
    type: str
    choices: [none, ductape-local]
    default: none
  auth_unknown:
    description:
      - What a task does with an env whose stored auth it cannot compare, because the API gives no auth digest
        (the hosted Ductape, as far as known; ductape-local gives one, except with C(--compat ductape)). Url and method are compared
        in any case.
      - V(changed) sends the registration again and reports the env as changed, on every run.
      - V(send) sends the registration again on every run (so the auth given is what is stored), and reports the env
        as changed only when its url or method differ.
      - Either way the env's result says C(auth_compared=false) and the task warns; it is never reported
        unchanged in silence. In check mode nothing is sent.
      - If not set, the value of the E(DUCTAPE_AUTH_UNKNOWN) environment variable is used.
    type: str
    choices: [changed, send]
    default: changed
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate.
      - Certificates are verified against the trust store of the Python that runs the module (the system's,
        or the file E(SSL_CERT_FILE) names); a file named by E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is
        used in its place.
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
  - Python 3 on the host that runs the module (the controller when the task runs locally); nothing beyond
    its standard library and ansible-core.
notes:
  - Requests go through the proxy that E(https_proxy), E(http_proxy) or E(all_proxy) names (an http
    proxy, with credentials in its URL if it needs them), except to the hosts that E(no_proxy) lists.
    Redirects are not followed, so a moved API fails naming where it moved to.
  - Set the connection once for every ductape task of a play with C(module_defaults) and the action group
    C(group/ductape.webhooks.ductape), or with the variables C(ductape_api_url), C(ductape_access_key),
    C(ductape_validate_certs), C(ductape_timeout), C(ductape_retries), C(ductape_auth_header),
    C(ductape_token_exchange) and C(ductape_auth_unknown) (inventory, play or role variables), which the
    action plugin reads for an option the task does not set, before the environment variables.
    The variables keep the access key out of the task's arguments, which
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
