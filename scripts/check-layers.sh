#!/usr/bin/env bash
# check-layers: lib/ is built in floors (lib/README.md).  Fails when
#   - a file in lib/DIR/ includes "OTHER/x.h" and OTHER is not a floor DIR may use,
#   - the floors themselves, or the includes between lib/ files, form a circle.
# Run by `make lint`; LIB=DIR checks another tree (tests/layers.bats plants a bad include).
set -u
lib=${LIB:-lib}
declare -A may=(
  [base]="" [image]="base" [format]="base image" [stream]="base image"
  [backend]="base" [cpu]="base backend" [cuda]="base backend"
  [nn]="base format image backend" [fid]="base format backend"
  [face]="base image" [dist]="base backend" [nccl]=""
  [tool]="base format image stream backend cpu nn fid face dist")
bad=0
for f in "$lib"/*; do
  [ -d "$f" ] || [ "${f##*/}" = README.md ] || { echo "$f: a file at the top of lib/ (each file lives in the folder of its concern)"; bad=1; }
done
for f in "$lib"/*/*.*; do
  d=${f#"$lib"/}; d=${d%%/*}
  [ -n "${may[$d]+set}" ] || { echo "$f: folder $d/ is not in the table of scripts/check-layers.sh"; bad=1; continue; }
  for to in $(sed -n 's,^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([A-Za-z0-9_-]*\)/.*,\1,p; s,^[[:space:]]*#[[:space:]]*include[[:space:]]*"\.\./.*,..,p' "$f" | sort -u); do
    [ "$to" = "$d" ] && continue
    case " ${may[$d]} " in
      *" $to "*) ;;
      *) echo "$f: includes $to/ (a $d/ file may use: ${may[$d]:-nothing})"; bad=1 ;;
    esac
  done
done
# No circle among the floors (the table) nor among the files (every include
# of a lib/ header, resolved as the compiler does: same folder, then lib/).
for d in "${!may[@]}"; do for to in ${may[$d]}; do echo "$to $d"; done; echo "$d $d"; done |
  tsort >/dev/null 2>/tmp/check-layers.$$ || { sed 's/^/floors: /' /tmp/check-layers.$$; bad=1; }
for f in "$lib"/*/*; do
  dir=${f%/*}
  sed -n 's,^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*,\1,p' "$f" | while read -r h; do
    if [ -f "$dir/$h" ]; then echo "$dir/$h $f"; elif [ -f "$lib/$h" ]; then echo "$lib/$h $f"; fi
  done
  echo "$f $f"
done | tsort >/dev/null 2>/tmp/check-layers.$$ || { sed 's/^/includes: /' /tmp/check-layers.$$; bad=1; }
rm -f /tmp/check-layers.$$
exit $bad
