#!/usr/bin/env bash
# ec2-terminate.sh: terminate the EC2 instance this runs on, as the reference
# does after training: an IMDSv2 token, then the instance id and region from
# the metadata service (AWS_EC2_METADATA_SERVICE_ENDPOINT, default
# http://169.254.169.254), then `aws ec2 terminate-instances`.
set -euo pipefail
md=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
md=${md%/}
token=$(curl -sf -m 5 -X PUT "$md/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") \
    || { echo "ec2-terminate.sh: no IMDSv2 token from $md (not on EC2?)" >&2; exit 1; }
get() { curl -sf -m 5 -H "X-aws-ec2-metadata-token: $token" "$md/latest/meta-data/$1"; }
id=$(get instance-id) || { echo "ec2-terminate.sh: no instance id from $md" >&2; exit 1; }
region=$(get placement/region) || { echo "ec2-terminate.sh: no region from $md" >&2; exit 1; }
echo "ec2-terminate.sh: terminating $id in $region" >&2
aws ec2 terminate-instances --instance-ids "$id" --region "$region"
