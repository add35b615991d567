DROP TABLE pipeline.held_back_group;
