"""The demo: a local news site with advertisers, campaigns and creatives to try adserver on."""
