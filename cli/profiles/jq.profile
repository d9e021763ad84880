# jq: the JSON processor.
#   sandbox run --profile jq --ro IN -- jq '.a | add' IN/data.json
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@dev
@limit mem 512M
