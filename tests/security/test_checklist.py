"""The security checks of issue 7, each with the tests that prove it. Several were written with their feature and
live there; this list points at them rather than repeating them, and fails when one is renamed or removed."""

from __future__ import annotations

from tests.security.proofs import missing
from tests.security.test_authorization import PARTY_SCOPED

AUTHZ = "tests/security/test_authorization.py"
LOGS = "tests/security/test_log_scan.py"
CREDENTIALS = "tests/security/test_credentials.py"
LIMITS = "tests/security/test_limits.py"
PAGES = "tests/web/test_pages.py"
SSRF = "tests/webhooks/test_ssrf.py"

CHECKLIST: dict[str, list[str]] = {
    "an authorization matrix over every endpoint, role and party, covering every route": [
        f"{AUTHZ}::test_the_access_table_names_exactly_the_routes_the_app_serves",
        f"{AUTHZ}::test_every_route_answers_every_role_as_the_access_table_says",
        f"{AUTHZ}::test_peer_routes_take_a_node_signature_and_never_a_client_token",
        f"{AUTHZ}::test_every_route_a_forwarder_may_call_has_a_party_scoping_proof",
        *sorted(set(PARTY_SCOPED.values())),
    ],
    "repeated bad tokens are rate-limited (429) per client address": [
        "tests/api/test_bad_tokens.py::test_repeated_bad_tokens_from_one_address_are_throttled",
        "tests/api/test_bad_tokens.py::test_missing_tokens_are_not_counted_as_guesses",
    ],
    "unknown tokens are limited per address and for the whole node; a valid token never is (issue 13.3)": [
        "tests/api/test_bad_tokens.py::test_a_valid_token_is_answered_after_bad_tokens_from_its_address",
        "tests/api/test_bad_tokens.py::test_rotating_addresses_reaches_the_global_limit",
    ],
    "X-Forwarded-For is believed only from TW_TRUSTED_PROXIES, by uvicorn and the throttle alike (issue 13.3)": [
        "tests/api/test_bad_tokens.py::test_forwarded_for_is_ignored_without_a_trusted_proxy",
        "tests/api/test_bad_tokens.py::test_serve_does_not_let_uvicorn_trust_forwarded_headers",
        "tests/api/test_bad_tokens.py::test_a_trusted_proxy_names_the_client",
        "tests/api/test_bad_tokens.py::test_trusted_proxies_must_be_addresses_or_networks",
    ],
    "tokens are compared in constant time (a lookup by SHA-256)": [
        f"{CREDENTIALS}::test_a_token_is_stored_and_looked_up_only_as_its_sha256",
    ],
    "secrets and tokens never appear in logs": [
        f"{LOGS}::test_a_demo_and_readmes_tour_against_it_log_no_token_and_no_private_key",
        f"{LOGS}::test_webhook_secrets_and_tokens_stay_out_of_debug_logs",
    ],
    "key files are created 0600 and refused when readable by others": [
        "tests/test_cli.py::test_keys_generate_writes_a_private_pem_prints_its_kid_and_never_overwrites_silently",
        "tests/test_cli.py::test_a_key_file_readable_by_others_is_refused_with_the_chmod_that_fixes_it",
        f"{CREDENTIALS}::test_a_key_file_anyone_but_its_owner_may_touch_is_refused",
        f"{CREDENTIALS}::test_a_node_does_not_start_with_an_exposed_key",
    ],
    "the web page's CSP allows no inline script and no framing": [
        f"{PAGES}::test_the_page_of_a_closed_journey_shows_its_timeline_route_and_border_posts",
        f"{PAGES}::test_the_code_form_redirects_and_an_unknown_or_rotated_code_gets_a_friendly_404",
        f"{PAGES}::test_the_script_and_styles_come_from_the_node_with_the_same_headers",
    ],
    "webhook targets cannot reach loopback, link-local or private ranges unless allowed": [
        f"{SSRF}::test_a_forwarder_cannot_point_a_subscription_at_the_nodes_own_network",
        f"{SSRF}::test_public_addresses_pass_the_guard_and_the_request_goes_to_the_checked_address",
        f"{SSRF}::test_the_target_is_checked_again_before_every_attempt",
        f"{SSRF}::test_ipv4_inside_ipv6_is_judged_as_the_ipv4_address",
    ],
    "answers carrying a secret or a token are sent with Cache-Control: no-store (issue 13.8)": [
        "tests/security/test_no_store.py::test_every_answer_with_a_secret_or_a_token_is_marked_no_store",
        "tests/webhooks/test_secrets_not_cached.py::test_secrets_and_tracking_codes_are_answered_with_no_store",
    ],
    "/metrics behind TW_METRICS_TOKEN when the operator sets one (issue 13.8)": [
        "tests/security/test_metrics_token.py::test_metrics_need_the_metrics_token_when_one_is_set",
        "tests/security/test_metrics_token.py::test_wrong_metrics_tokens_are_throttled_like_unknown_client_tokens",
    ],
    "every list endpoint is paginated with a maximum page size": [
        f"{LIMITS}::test_every_list_endpoint_pages_with_a_bounded_limit_and_a_cursor",
    ],
    "request body limits on every route": [
        f"{LIMITS}::test_an_over_limit_body_is_refused_with_413_on_every_route_that_takes_one",
        "tests/documents/test_body_limits.py::test_the_limit_of_each_path",
    ],
}


def test_every_security_check_points_at_tests_that_exist() -> None:
    gone = {claim: missing(proofs) for claim, proofs in CHECKLIST.items() if missing(proofs)}
    assert not gone, gone
