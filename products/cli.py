"""CLI commands of data products: ``product``, ``verify``, ``catalog``,
``register`` (the transparency register) and ``request`` (data requests),
registered on ``dp-sandbox`` through the ``dp_sandbox.cli`` entry point.

Imported when ``dp-sandbox --help`` draws the command tree: only click at the
top, the services inside each command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sandbox.cli.decisions import decision_options, deprecated, emit_decision
from sandbox.cli.options import as_option, handles_errors, home_option, json_option
from sandbox.cli.options import open_instance as _open
from sandbox.cli.output import echo_lines
from sandbox.cli.output import emit as _emit
from sandbox.cli.output import print_table
from sandbox.vocabulary import ProductState


@click.group()
def product() -> None:
    """Data products: draft, submit, decide, release, export, withdraw."""


def _show_detail(d: dict) -> None:
    click.echo(f"product {d['id']}: {d['title']}  [{d['state']}]  dataset {d['dataset']}, author {d['author']}")
    if d["state"] in (ProductState.SUBMITTED, ProductState.APPROVED):
        click.echo(f"  approvals {d['approvals']}/{d['approvals_required']} (round {d['review_round']})")
    if d.get("purpose"):
        click.echo(f"  purpose: {d['purpose']}")
    if d.get("licence_purpose"):
        click.echo(f"  licence #{d['licence_id']} granted for: {d['licence_purpose']}")
    if d["withdraw_reason"]:
        click.echo(f"  withdrawn: {d['withdraw_reason']}")
    for v in d["versions"]:
        click.echo(f"  v{v['number']}: dataset v{v['dataset_version']}, ε={v['epsilon']:g}, "
                   f"{'released ' + v['released_at'] if v['released_at'] else 'not released'}")
    for c in d["checks"]:
        click.echo(f"  check {c['status'].upper():<4} {c['name']:<20} {c['message']}")
    _show_tables(d)
    for r in d["reviews"]:
        click.echo(f"  review {r['decision']:<8} by {r['reviewer']} (round {r['round']}) {r['reason']}")


def _show_tables(d: dict) -> None:
    """Each table's SQL and noisy values with their intervals; the cells a check
    warns about are listed under the table as (row, column) from 1."""
    for i, t in enumerate(d.get("tables") or [], start=1):
        click.echo(f"\ntable {i} (run {t['run_id'][:8]}, ε={t['epsilon'] or 0:g}):")
        click.echo("  " + " ".join(t["sql"].split()))
        print_table({"columns": t["columns"], "rows": t["rows"], "intervals": t["intervals"]})
        for c in d["checks"]:
            positions = (c.get("details") or {}).get("positions") or []
            if c["table"] == t["run_id"] and c["status"] != "pass" and positions:
                cells = ", ".join(f"({r + 1}, {t['columns'][col]})" for r, col in positions)
                click.echo(f"  {c['status']} {c['name']}: {cells}")


@product.command("draft")
@home_option
@as_option(help="The operator.")
@click.option("--title", required=True)
@click.option("--run", "runs", multiple=True, required=True, help="A charged query run id (repeatable).")
@click.option("--description", default="")
@click.option("--purpose", default="")
@click.option("--chart", "charts", multiple=True, help="A chart hint RUN_ID=KIND (bar, line, table; repeatable).")
@json_option
@handles_errors
def product_draft(home, as_user, title, runs, description, purpose, charts, as_json) -> None:
    """Draft a product from your own charged query results."""
    from products.service import draft_product

    hints = {}
    for item in charts:
        run_id, sep, kind = item.partition("=")
        if not sep:
            raise click.BadParameter("use RUN_ID=KIND", param_hint="--chart")
        hints[run_id] = {"chart": kind}
    with _open(home) as inst:
        d = draft_product(inst, as_user, title=title, run_ids=list(runs), description=description,
                          purpose=purpose, chart_hints=hints or None).to_dict()
    _emit(d, as_json, lambda d: click.echo(d["id"]))


@product.command("edit")
@home_option
@as_option(help="The author.")
@click.argument("product_id", type=int)
@click.option("--title", default=None)
@click.option("--description", default=None)
@click.option("--purpose", default=None)
@click.option("--run", "runs", multiple=True, help="Replace the runs (repeatable).")
@json_option
@handles_errors
def product_edit(home, as_user, product_id, title, description, purpose, runs, as_json) -> None:
    """Edit a draft, returned or submitted product (a submitted one loses its votes)."""
    from products.service import edit_product

    with _open(home) as inst:
        d = edit_product(inst, as_user, product_id, title=title, description=description, purpose=purpose,
                         run_ids=list(runs) or None).to_dict()
    _emit(d, as_json, _show_detail)


@product.command("submit")
@home_option
@as_option(help="The author.")
@click.argument("product_id", type=int)
@click.option("--attestation", default=None, help="Your responsibility statement (default: the standard one).")
@json_option
@handles_errors
def product_submit(home, as_user, product_id, attestation, as_json) -> None:
    """Submit a product for review, attesting responsibility for it."""
    from products.service import DEFAULT_ATTESTATION, submit_product

    with _open(home) as inst:
        d = submit_product(inst, as_user, product_id, attestation=attestation or DEFAULT_ATTESTATION).to_dict()
    _emit(d, as_json, _show_detail)


@product.command("decide")
@decision_options(("approve", "return", "reject"), as_help="The reviewer.",
                  reason_help="Needed to return or reject, and to approve over a check that warns or fails; one of "
                  "only spaces or zero-width characters is refused (invisible_reason).")
def product_decide(home, object_id, decision, reason, as_user, as_json) -> None:
    """Approve, return or reject a submitted product (a reviewer's review)."""
    from products.service import review_product

    with _open(home) as inst:
        d = review_product(inst, as_user, object_id, decision, reason)
    emit_decision("product", object_id, decision, d.state, reason, as_json)


@product.command("review", hidden=True, help="Deprecated spelling of 'dp-sandbox product decide ID VERB'.")
@home_option
@as_option(help="The reviewer.")
@click.argument("product_id", type=int)
@click.argument("decision", type=click.Choice(["approve", "return", "reject"]))
@click.option("--reason", default="")
@json_option
@click.pass_context
def product_review(ctx, home, as_user, product_id, decision, reason, as_json) -> None:
    deprecated("product review ID VERB", "product decide ID VERB")
    ctx.invoke(product_decide, home=home, object_id=product_id, decision=decision, reason=reason,
               as_user=as_user, as_json=as_json)


@product.command("release")
@home_option
@as_option(help="The author or an admin.")
@click.argument("product_id", type=int)
@json_option
@handles_errors
def product_release(home, as_user, product_id, as_json) -> None:
    """Release an approved product: write its files and the signed manifest."""
    from products.service import release_product

    with _open(home) as inst:
        r = release_product(inst, as_user, product_id).to_dict()
    _emit(r, as_json, lambda r: click.echo(f"released product {r['product_id']} v{r['version']} at {r['path']} "
                                           f"(manifest SHA-256 {r['manifest_sha256'][:16]}…, key {r['key_id']})"))


@product.command("rerun")
@home_option
@as_option(help="The author.")
@click.argument("product_id", type=int)
@click.option("--dataset-version", type=int, default=None, help="Default: the newest.")
@json_option
@handles_errors
def product_rerun(home, as_user, product_id, dataset_version, as_json) -> None:
    """Re-run a released product on a new dataset version (charges ε) as a new draft version."""
    from products.service import rerun_product

    with _open(home) as inst:
        d = rerun_product(inst, as_user, product_id, dataset_version=dataset_version).to_dict()
    _emit(d, as_json, _show_detail)


@product.command("export")
@home_option
@click.argument("product_id", type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--version", type=int, default=None, help="Default: the newest released version.")
@click.option("--zip", "as_zip", is_flag=True, help="Write one zip file instead of a folder.")
@as_option(required=False, help="Acting user (default: the public view).")
@handles_errors
def product_export(home, product_id, out, version, as_zip, as_user) -> None:
    """Copy a released product's files and signed manifest to a folder or zip."""
    from products.service import export_product

    with _open(home) as inst:
        path = export_product(inst, as_user, product_id, out, version=version, as_zip=as_zip)
    click.echo(str(path))


@product.command("withdraw")
@home_option
@as_option(help="The author (unreleased products) or an admin.")
@click.argument("product_id", type=int)
@click.option("--reason", required=True, help="Public for released products.")
@json_option
@handles_errors
def product_withdraw(home, as_user, product_id, reason, as_json) -> None:
    """Withdraw a product (released ones stay verifiable and are marked withdrawn)."""
    from products.service import withdraw_product

    with _open(home) as inst:
        d = withdraw_product(inst, as_user, product_id, reason).to_dict()
    _emit(d, as_json, _show_detail)


@product.command("list")
@home_option
@as_option(required=False, help="Acting user (default: the public view).")
@click.option("--state", default=None)
@click.option("--dataset", default=None)
@json_option
@handles_errors
def product_list(home, as_user, state, dataset, as_json) -> None:
    """List the products you may see."""
    from products.service import list_products

    with _open(home) as inst:
        rows = [p.to_dict() for p in list_products(inst, as_user, state=state, dataset=dataset)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['state']:<10} {x['dataset']:<10} v{x['latest_version']:<3} {x['author']:<12} {x['title']}"
        for x in r))


@product.command("show")
@home_option
@as_option(required=False, help="Acting user (default: the public view).")
@click.argument("product_id", type=int)
@json_option
@handles_errors
def product_show(home, as_user, product_id, as_json) -> None:
    """Show a product: versions, checks, reviews."""
    from products.service import get_product

    with _open(home) as inst:
        d = get_product(inst, as_user, product_id).to_dict()
    _emit(d, as_json, _show_detail)


@click.command()
@click.argument("path", type=click.Path(exists=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The instance's public key (PEM); default: the key named in the manifest.")
@json_option
@handles_errors
def verify(path, key_file, as_json) -> None:
    """Verify a product or report package (folder or zip) offline: hashes and signature."""
    from products.manifest import verify_path

    report = verify_path(path, key_file.read_text() if key_file else None)

    def human(r: dict) -> None:
        if r["ok"]:
            click.echo(f"OK: {r['subject']} — {r['files_checked']} files and the signature check out "
                       f"(key {r['key_id']})")
            if key_file:
                click.echo(f"Key: read from {key_file}.")
            else:
                click.echo("Key: taken from the package itself (manifest.json), so this shows the files are "
                           "intact, not who signed them. Compare the key id with the publisher's "
                           "(dp-sandbox keys show, or /.well-known/dp-sandbox/signing-key.pem), or pass --key.")
        else:
            click.echo(f"FAILED: {path}")
            for p in r["problems"]:
                click.echo(f"  {p}")

    _emit(report.to_dict(), as_json, human)
    if not report.ok:
        sys.exit(1)


@click.group()
def catalog() -> None:
    """The public catalog."""


@catalog.command("export")
@home_option
@click.option("--format", "fmt", type=click.Choice(["jsonld"]), default="jsonld", show_default=True)
@click.option("--base-url", default=None, help="Public address of the instance (default: host and port).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: stdout.")
@handles_errors
def catalog_export(home, fmt, base_url, out) -> None:
    """Export datasets and released products as DCAT-AP JSON-LD."""
    from products.service import catalog_jsonld

    with _open(home) as inst:
        doc = catalog_jsonld(inst, base_url)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(str(out))
    else:
        click.echo(text)


@click.command("register")
@home_option
@click.option("--year", type=int, default=None, help="Write the signed disclosure report of this year.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the report (default: <home>/register/<year>).")
@json_option
@handles_errors
def register_command(home, year, out, as_json) -> None:
    """The transparency register; with --year, the signed annual disclosure report."""
    from products.service import disclosure_report, transparency_register

    with _open(home) as inst:
        if year is None:
            reg = transparency_register(inst).to_dict()

            def human(r: dict) -> None:
                click.echo("Licences:")
                for l in r["licences"]:
                    click.echo(f"  {l['id']:<4} {l['dataset']:<10} {l['operator']:<12} {l['status']:<8} "
                               f"{l['granted_at'][:10]} → {l['expires_at'][:10]}  {l['purpose']}")
                click.echo("Released products:")
                for p in r["products"]:
                    click.echo(f"  {p['id']:<4} {p['state']:<10} {p['dataset']:<10} {p['title']}")
                click.echo("Budgets:")
                for b in r["budgets"]:
                    click.echo(f"  {b['dataset']:<10} ε spent {b['epsilon_spent']:.4g} of {b['epsilon']:.4g} "
                               f"(remaining {b['epsilon_remaining']:.4g})")
                for w in r["withdrawals"]:
                    click.echo(f"Withdrawn: product {w['product_id']} ({w['withdrawn_at'][:10]}): {w['reason']}")

            _emit(reg, as_json, human)
            return
        report = disclosure_report(inst, year, out=out)
    data = dict(report.to_dict(), path=str(report.path))
    _emit(data, as_json, lambda d: click.echo(f"disclosure report {year}: {d['path']} (signed; check it with "
                                              f"'dp-sandbox verify {d['path']}')"))


@click.group()
def request() -> None:
    """Data requests: file, show, list, decide."""


@request.command("file")
@home_option
@click.option("--title", required=True, help="What data you need.")
@click.option("--description", required=True, help="Why you need it.")
@click.option("--contact", required=True, help="E-mail or phone (not shown publicly).")
@click.option("--dataset", default=None)
@as_option(required=False, help="Signed-in user (default: anonymous).")
@json_option
@handles_errors
def request_file(home, title, description, contact, dataset, as_user, as_json) -> None:
    """File a data request."""
    from products.service import file_request

    with _open(home) as inst:
        r = file_request(inst, as_user, title=title, description=description, contact=contact,
                         dataset=dataset).to_dict()
    _emit(r, as_json, lambda r: click.echo(f"filed data request {r['id']}; follow it with "
                                           f"'dp-sandbox request show {r['id']}' or on the page /requests/{r['id']}"))


@request.command("show")
@home_option
@click.argument("request_id", type=int)
@as_option(required=False, help="Signed-in user (owners, admins and the requester also see the contact).")
@json_option
@handles_errors
def request_show(home, request_id, as_user, as_json) -> None:
    """One data request: its status, the reason of the decision, the product answering it."""
    from products.service import get_data_request

    with _open(home) as inst:
        r = get_data_request(inst, as_user, request_id).to_dict()

    def human(r: dict) -> None:
        click.echo(f"data request {r['id']}: {r['title']}  [{r['status']}]  dataset {r['dataset'] or '-'}")
        if r["reason"]:
            click.echo(f"  reason: {r['reason']}")
        if r["product_id"]:
            click.echo(f"  answered by product {r['product_id']}")

    _emit(r, as_json, human)


@request.command("list")
@home_option
@as_option(required=False, help="Owners and admins also see contacts.")
@click.option("--status", default=None)
@json_option
@handles_errors
def request_list(home, as_user, status, as_json) -> None:
    """List data requests (public)."""
    from products.service import list_data_requests

    with _open(home) as inst:
        rows = [r.to_dict() for r in list_data_requests(inst, as_user, status=status)]
    _emit(rows, as_json, lambda rows: echo_lines(
        f"{r['id']:<4} {r['status']:<9} {r['dataset'] or '-':<10} {r['title']}"
        + (f"  <{r['contact']}>" if r.get("contact") else "") + (f"  product {r['product_id']}" if r['product_id'] else "")
        for r in rows))


@request.command("decide")
@click.option("--product", "product_id", type=int, default=None, help="The product answering it (for link).")
@decision_options(("accept", "decline", "link"), as_help="The dataset's owner or an admin.",
                  reason_help="Why (needed to decline).")
def request_decide(home, object_id, decision, reason, as_user, as_json, product_id) -> None:
    """Accept, decline (with a reason) or link a product to a data request."""
    from products.service import decide_data_request

    with _open(home) as inst:
        r = decide_data_request(inst, as_user, object_id, decision, reason, product_id)
    emit_decision("data_request", object_id, decision, r.status, reason, as_json)


def register(main: click.Group) -> None:
    main.add_command(product)
    main.add_command(verify)
    main.add_command(catalog)
    main.add_command(register_command)
    main.add_command(request)
