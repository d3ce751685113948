# Sourced by the scripts that run ansible-test (test-sanity.sh, test-units.sh). ansible-test insists on
# running from .../ansible_collections/NAMESPACE/NAME (it reads the real working directory, so the
# link under .build/collections does not do), so it runs on a copy of the collection laid out that way,
# without what is not Ansible content (the local server, CI, scripts, benchmarks, local tool state):
# the same things the artifact leaves out.
#
#   copy_collection REPO DEST    copies REPO's files to DEST/ansible_collections/ductape/webhooks
#                                and prints that path

copy_collection() {
  local repo=$1 dest=$2
  local copy="$dest/ansible_collections/ductape/webhooks"
  mkdir -p "$copy"
  # The files git knows or would add (tracked, and new ones not ignored by .gitignore), so local tool
  # state and test output never reach ansible-test, and a file not yet committed is checked too.
  git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | grep -zvE '^(server|\.ci|scripts|benchmarks|tests/output)/|^(Makefile|requirements-dev\.txt)$' \
    | (cd "$repo" && while IFS= read -r -d '' path; do [[ -e $path ]] && printf '%s\0' "$path"; done) \
    | tar -C "$repo" --null -T - -cf - | tar -C "$copy" -xf -
  [[ -f "$copy/galaxy.yml" ]] || { echo "copy_collection: the copy at $copy has no galaxy.yml" >&2; return 1; }
  printf '%s\n' "$copy"
}
